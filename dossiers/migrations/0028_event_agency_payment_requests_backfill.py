"""The event's agency (2 of 3): the payment requests written before 0027, filled.

Only the `dossier.payment_requested` events (what the performance report reads by
agency, a hundredth of the log): the others keep NULL. In batches of `BATCH`
requests in `created_at` order, walked on their own partial index
(`dossier_event_payment_requests`, 0022), each batch its own transaction (this
migration is not atomic): row locks on one batch at a time, never a table lock, and
never a read of the rest of the log. Rows written after 0027 carry the agency (its
trigger). Interrupted, it is simply run again: filled rows are skipped. The updated
rows leave dead tuples behind: autovacuum, or `VACUUM tracking_dossierevent` at a
quiet hour.
"""

from django.db import migrations, transaction

TABLE = "tracking_dossierevent"
DOSSIERS = "dossiers_dossier"
REQUESTED = "dossier.payment_requested"
BATCH = 5_000

# The moment after the next BATCH requests from `low` on (none: the last batch).
NEXT_BOUND = f"""
SELECT created_at FROM {TABLE}
WHERE type = '{REQUESTED}' AND created_at >= %s
ORDER BY created_at OFFSET %s LIMIT 1
"""

FILL = f"""
UPDATE {TABLE} e SET agency_id = d.agency_id
FROM {DOSSIERS} d
WHERE d.id = e.dossier_id AND e.type = '{REQUESTED}' AND e.agency_id IS NULL
  AND e.created_at >= %s AND (%s::timestamptz IS NULL OR e.created_at < %s)
"""


def fill(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT min(created_at) FROM {TABLE} WHERE type = '{REQUESTED}'"  # noqa: S608  # nosec B608
            )
            (low,) = cursor.fetchone()
            while low is not None:
                cursor.execute(NEXT_BOUND, [low, BATCH])
                found = cursor.fetchone()
                high = found[0] if found else None
                if high == low:  # more than a batch at one moment: take them all
                    cursor.execute(
                        f"SELECT min(created_at) FROM {TABLE}"  # noqa: S608  # nosec B608
                        f" WHERE type = '{REQUESTED}' AND created_at > %s",
                        [low],
                    )
                    (high,) = cursor.fetchone()
                # Autocommit (the migration is not atomic): one short transaction each.
                cursor.execute(FILL, [low, high, high])
                low = high
    elif connection.vendor == "sqlite":
        from importlib import import_module

        organisation = import_module("dossiers.migrations.0014_event_organisation_backfill")
        # SQLite has one writer: lift the append-only trigger for the backfill, in one
        # transaction with its restoration (as 0014 does).
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("DROP TRIGGER IF EXISTS tracking_dossierevent_no_update")
            schema_editor.execute(
                f"UPDATE {TABLE} SET agency_id = (SELECT d.agency_id "  # noqa: S608  # nosec B608
                f"FROM {DOSSIERS} d WHERE d.id = {TABLE}.dossier_id) "
                f"WHERE agency_id IS NULL AND type = '{REQUESTED}'"
            )
            schema_editor.execute(organisation.SQLITE_NO_UPDATE)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0027_dossier_processing_seconds_event_agency"),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
    ]
