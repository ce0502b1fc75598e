"""The dossier event log moves from the tracking app to the dossiers app.

State only: the table (`tracking_dossierevent`, kept through `db_table`), its rows,
indexes, constraints and the append-only trigger (tracking 0002) stay as they are.
notifications 0003 points its foreign key at the new model, then tracking 0004
forgets the old one.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('dossiers', '0004_agency_replays_in_idempotency_records'),
        ('tracking', '0003_merge_0002_event_log_append_only_0002_event_txid'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='DossierEvent',
                    fields=[
                        ('id', models.BigAutoField(primary_key=True, serialize=False)),
                        ('seq', models.PositiveIntegerField()),
                        ('type', models.CharField(choices=[('dossier.submitted', 'Dossier Submitted'), ('dossier.withdrawn', 'Dossier Withdrawn'), ('dossier.supplement_submitted', 'Dossier Supplement Submitted'), ('dossier.rated', 'Dossier Rated'), ('dossier.accepted', 'Dossier Accepted'), ('dossier.refused', 'Dossier Refused'), ('dossier.processing_started', 'Dossier Processing Started'), ('dossier.supplement_requested', 'Dossier Supplement Requested'), ('dossier.payment_requested', 'Dossier Payment Requested'), ('dossier.completed', 'Dossier Completed'), ('dossier.handed_over', 'Dossier Handed Over'), ('dossier.stopped', 'Dossier Stopped'), ('dossier.apologised', 'Dossier Apologised'), ('dossier.overdue', 'Dossier Overdue'), ('dossier.deadline_at_risk', 'Dossier Deadline At Risk'), ('delivery.booked', 'Delivery Booked'), ('delivery.cancelled', 'Delivery Cancelled'), ('delivery.picked_up', 'Delivery Picked Up'), ('delivery.in_transit', 'Delivery In Transit'), ('delivery.out_for_delivery', 'Delivery Out For Delivery'), ('delivery.delivered', 'Delivery Delivered'), ('delivery.failed_attempt', 'Delivery Failed Attempt'), ('delivery.returned', 'Delivery Returned')], max_length=40)),
                        ('status_before', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('status_after', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('actor_type', models.CharField(choices=[('citizen', 'Citizen'), ('agency', 'Agency system'), ('officer', 'Agency officer'), ('carrier', 'Postal carrier'), ('system', 'System')], max_length=8)),
                        ('actor_label', models.CharField(blank=True, max_length=255)),
                        ('message', models.TextField(blank=True)),
                        ('data', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('txid', models.BigIntegerField(default=0, editable=False)),
                        ('actor_user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('dossier', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='events', to='dossiers.dossier')),
                    ],
                    options={
                        'db_table': 'tracking_dossierevent',
                        'ordering': ['id'],
                        'indexes': [models.Index(fields=['txid', 'id'], name='dossier_event_log_order')],
                        'constraints': [models.UniqueConstraint(fields=('dossier', 'seq'), name='dossier_event_unique_seq')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
