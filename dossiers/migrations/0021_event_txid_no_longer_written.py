"""Release 1 of the two that remove `txid` from the event log: nothing writes or
names it any more; release 2 drops the column.

The log's order became the event id (0018, tracking/stream.py). Since then `txid`,
the inserting transaction's id, is read by nothing: no query of the app, no
benchmark, no document of the API (tests/dossiers/test_event_log.py holds it).
Dropping the column in the release that stops using it would break the previous
release while it still serves (it inserts and reads the column back), so:

- this release's model has no `txid` field: no INSERT or SELECT of it names the
  column (and bench/scale.py's seed no longer writes it);
- PostgreSQL: the log's trigger stops setting it (CREATE OR REPLACE FUNCTION, no
  lock on the table), and the column loses its default (0016) and its NOT NULL: one
  ALTER TABLE, a catalogue change (no rewrite, no scan of the log) holding ACCESS
  EXCLUSIVE for an instant, its wait bounded by `manage.py migrate`
  (MIGRATION_LOCK_TIMEOUT_MS). One transaction: the previous release, still
  serving, inserts DEFAULT into `txid` and reads it back (RETURNING): it gets NULL,
  which it never uses;
- SQLite (the embedded default: one process, no rolling deploy): the column is
  dropped at once. Its NOT NULL has no default there (Django wrote 0), so it would
  refuse this release's inserts, and changing it would rebuild the table and lose
  its append-only triggers; nothing references it any more (0019 dropped its indexes).

Release 2, once no process of a release before this one runs: on PostgreSQL
`ALTER TABLE tracking_dossierevent DROP COLUMN IF EXISTS txid` (a catalogue change
too, ACCESS EXCLUSIVE for an instant, bounded the same way); nothing on SQLite (README
"Deploying").

Going back restores the trigger's assignment and the default (the previous
release's code then finds its values again); the NOT NULL stays off on PostgreSQL
(rows written meanwhile have none, and the log is append-only).
"""

from django.db import migrations

TABLE = "tracking_dossierevent"
SEQUENCE = "tracking_dossierevent_log_seq"
FUNCTION = "tracking_dossierevent_take_id"

# The function 0018 made, less the transaction id.
TAKE_ID = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The event writer's lock first, then the id: tracking/stream.py relies on it.
    PERFORM pg_advisory_xact_lock_shared(21586, 1);
    IF NEW.id IS NULL THEN
        NEW.id := nextval('{SEQUENCE}');
    END IF;
    RETURN NEW;
END
$$;
"""

# 0018's function, as it was.
TAKE_ID_AND_TXID = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The event writer's lock first, then the id: tracking/stream.py relies on it.
    PERFORM pg_advisory_xact_lock_shared(21586, 1);
    NEW.txid := pg_current_xact_id()::text::bigint;
    IF NEW.id IS NULL THEN
        NEW.id := nextval('{SEQUENCE}');
    END IF;
    RETURN NEW;
END
$$;
"""


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(TAKE_ID)
        schema_editor.execute(
            f"ALTER TABLE {TABLE} ALTER COLUMN txid DROP DEFAULT, ALTER COLUMN txid DROP NOT NULL"
        )
    elif vendor == "sqlite":
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP COLUMN txid")


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
        schema_editor.execute(TAKE_ID_AND_TXID)
    elif vendor == "sqlite":
        schema_editor.execute(f"ALTER TABLE {TABLE} ADD COLUMN txid bigint NOT NULL DEFAULT 0")


class Migration(migrations.Migration):
    dependencies = [
        ("dossiers", "0020_event_dossier_index_dropped"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="dossierevent", name="txid"),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
