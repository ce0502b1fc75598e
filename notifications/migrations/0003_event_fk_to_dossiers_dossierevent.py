"""Notification.event follows the event log to the dossiers app (dossiers 0004).

State only: the column and its foreign key constraint already point at the
same table, `tracking_dossierevent`.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0002_delivery_claim_lease'),
        ('dossiers', '0005_dossierevent_moved_from_tracking'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='notification',
                    name='event',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='dossiers.dossierevent'),
                ),
            ],
            database_operations=[],
        ),
    ]
