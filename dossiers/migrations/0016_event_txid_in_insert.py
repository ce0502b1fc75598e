"""An event's transaction id computed by its INSERT (`CurrentTransactionId`).

`record_event` asked PostgreSQL for the transaction id (`pg_current_xact_id()`),
then inserted it: a round trip per event on every dossier move. The column's
default now computes it, and the INSERT returns it with the id.

On PostgreSQL: `ALTER COLUMN ... SET DEFAULT`, a catalogue change (no rewrite, no
scan of the 20 M-row log; its lock waits for transactions open on the table, run
it with a `lock_timeout`). SQLite (the embedded default) needs nothing in the
database: Django writes the default's value (0) into each INSERT there, and
altering the column would rebuild the table and drop its append-only triggers.
"""

from django.db import migrations, models

import dossiers.models

TABLE = "tracking_dossierevent"


def set_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )


def drop_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN txid DROP DEFAULT")


class Migration(migrations.Migration):
    dependencies = [
        ("dossiers", "0015_event_organisation_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="dossierevent",
                    name="txid",
                    field=models.BigIntegerField(
                        db_default=dossiers.models.CurrentTransactionId(), editable=False
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(set_default, drop_default)],
        ),
    ]
