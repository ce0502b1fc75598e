"""The event log now belongs to the dossiers app (dossiers 0004): forget it here.

State only: the table, its rows and the append-only trigger stay. This runs
after every foreign key to the model points at dossiers.DossierEvent.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('tracking', '0003_merge_0002_event_log_append_only_0002_event_txid'),
        ('dossiers', '0005_dossierevent_moved_from_tracking'),
        ('notifications', '0003_event_fk_to_dossiers_dossierevent'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='DossierEvent')],
            database_operations=[],
        ),
    ]
