"""The dossier's organisation copied onto its events (2 of 3): the backfill.

In batches of `BATCH` ids over the id range read at the start, each batch its own
transaction (this migration is not atomic): row locks on one batch at a time, never
a table lock. Rows above the range were written after 0013's trigger, which fills
them. Only events of organisations' dossiers change (a fifth of the log in the
benchmark), through the append-only trigger's one exception (0013). Interrupted, it
is simply run again: filled rows are skipped. The updated rows leave dead tuples
behind: autovacuum, or `VACUUM tracking_dossierevent` at a quiet hour.
"""

from django.db import migrations, transaction

TABLE = "tracking_dossierevent"
DOSSIERS = "dossiers_dossier"
BATCH = 50_000

FILL = f"""
UPDATE {TABLE} e SET organisation_id = d.organisation_id
FROM {DOSSIERS} d
WHERE d.id = e.dossier_id AND d.organisation_id IS NOT NULL
  AND e.organisation_id IS NULL AND e.id >= %s AND e.id < %s
"""

SQLITE_NO_UPDATE = (
    f"CREATE TRIGGER tracking_dossierevent_no_update BEFORE UPDATE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'dossier events are append-only (UPDATE refused)'); END;"
)


def fill(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT min(id), max(id) FROM {TABLE}")  # noqa: S608  # nosec B608
            low, high = cursor.fetchone()
            if low is None:
                return
            for start in range(low, high + 1, BATCH):
                # Autocommit (the migration is not atomic): one short transaction each.
                cursor.execute(FILL, [start, start + BATCH])
    elif connection.vendor == "sqlite":
        # SQLite has one writer: lift the append-only trigger for the backfill, in
        # one transaction with its restoration. (Only the app writes here, through
        # `record_event`, which sets the column; SQLite triggers cannot fill NEW.)
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("DROP TRIGGER IF EXISTS tracking_dossierevent_no_update")
            schema_editor.execute(
                f"UPDATE {TABLE} SET organisation_id = (SELECT d.organisation_id "  # noqa: S608  # nosec B608
                f"FROM {DOSSIERS} d WHERE d.id = {TABLE}.dossier_id) "
                "WHERE organisation_id IS NULL"
            )
            schema_editor.execute(SQLITE_NO_UPDATE)



class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0013_event_organisation"),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
    ]
