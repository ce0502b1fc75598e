"""The dossier's organisation copied onto its events, and two partial indexes.

`DossierEvent.organisation` (see dossiers/models.py) lets an organisation member's
replay read the organisation's events in log order from
`dossier_event_org_order` (tracking/stream.py); `dossier_unwarned_deadline`
bounds the at-risk scan to running dossiers not warned yet (dossiers/monitoring.py).

Written for a live 20 M-row event log (docs/performance.md, Queries at scale):

1. ADD COLUMN, nullable, no default, no foreign-key constraint: a catalogue change,
   no table rewrite or scan (the lock is held for milliseconds; it waits for
   running transactions on the table, so run it with a `lock_timeout`).
2. A BEFORE INSERT trigger fills the column from the dossier whenever it is NULL,
   so rows written from now on carry it, whatever code writes them (the previous
   release during a rolling deploy, raw SQL). The append-only trigger now lets
   exactly one change through: filling a NULL copy with the dossier's own
   organisation, the rest of the row unchanged.
3. The backfill, in batches of `BATCH` ids, each its own transaction (the migration
   is not atomic): row locks on one batch at a time, never a table lock; rows
   above the last id read at the start are filled by the trigger. It touches only
   the events of organisations' dossiers (a fifth of the log in the benchmark).
4. The indexes, `CREATE INDEX CONCURRENTLY` on PostgreSQL (no write lock).

SQLite (the embedded default) gets the same column, backfill and indexes, plainly.
"""

import django.db.models.functions.comparison
from django.db import migrations, models, transaction

TABLE = "tracking_dossierevent"
DOSSIERS = "dossiers_dossier"
BATCH = 50_000

APPEND_ONLY_WITH_FILL = f"""
CREATE OR REPLACE FUNCTION tracking_dossierevent_append_only() RETURNS trigger AS $$
BEGIN
    -- The one change allowed: filling the copy of the dossier's organisation on a
    -- row written before the column existed (dossiers 0013), nothing else.
    IF TG_OP = 'UPDATE' AND OLD.organisation_id IS NULL
       AND to_jsonb(NEW) - 'organisation_id' = to_jsonb(OLD) - 'organisation_id'
       AND NEW.organisation_id = (
           SELECT d.organisation_id FROM {DOSSIERS} d WHERE d.id = NEW.dossier_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'dossier events are append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tracking_dossierevent_organisation() RETURNS trigger AS $$
BEGIN
    IF NEW.organisation_id IS NULL THEN
        NEW.organisation_id := (
            SELECT d.organisation_id FROM {DOSSIERS} d WHERE d.id = NEW.dossier_id);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS tracking_dossierevent_organisation ON {TABLE};
CREATE TRIGGER tracking_dossierevent_organisation
    BEFORE INSERT ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION tracking_dossierevent_organisation();
"""

APPEND_ONLY_ORIGINAL = f"""
DROP TRIGGER IF EXISTS tracking_dossierevent_organisation ON {TABLE};
DROP FUNCTION IF EXISTS tracking_dossierevent_organisation();
CREATE OR REPLACE FUNCTION tracking_dossierevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'dossier events are append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
"""

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
        schema_editor.execute(APPEND_ONLY_WITH_FILL, params=None)
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


def unfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_ORIGINAL, params=None)


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    """`CREATE INDEX CONCURRENTLY` on PostgreSQL (no write lock on a live table), a
    plain CREATE INDEX elsewhere (SQLite runs the same migrations)."""

    atomic = False

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0006_device_key"),
        ("dossiers", "0012_scale_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="dossierevent",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=models.deletion.DO_NOTHING,
                related_name="+",
                to="accounts.organisation",
            ),
        ),
        migrations.RunPython(fill, unfill, elidable=False),
        AddIndexConcurrentlyOnPostgres(
            model_name="dossierevent",
            index=models.Index(
                condition=models.Q(("organisation__isnull", False)),
                fields=["organisation", "txid", "id"],
                name="dossier_event_org_order",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="dossier",
            index=models.Index(
                django.db.models.functions.comparison.Coalesce(
                    "original_appointment_at", "appointment_at"
                ),
                models.F("id"),
                condition=models.Q(
                    ("appointment_at__isnull", False),
                    ("paused_at__isnull", True),
                    ("status__in", [2, 4, 6]),
                    ("deadline_warned_at__isnull", True),
                    ("overdue_at__isnull", True),
                ),
                name="dossier_unwarned_deadline",
            ),
        ),
    ]
