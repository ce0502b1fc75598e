"""The dossier's organisation copied onto its events (1 of 3, for a live log).

`DossierEvent.organisation` (see dossiers/models.py) lets an organisation member's
replay read the organisation's events in log order from `dossier_event_org_order`
(tracking/stream.py). Three migrations, each safe to run on a live 20 M-row event
log and to run again if interrupted (docs/performance.md, Queries at scale):

* 0013 (this one, one short transaction): ADD COLUMN, nullable, no default, no
  foreign-key constraint (the dossier's holds it; adding one would scan the log):
  a catalogue change, no rewrite or scan. Its lock waits for transactions open on
  the table: run it with a `lock_timeout`. And the triggers: BEFORE INSERT fills
  the column from the dossier whenever it is NULL, so rows written from now on
  carry it whatever writes them (the previous release during a rolling deploy, raw
  SQL); the append-only trigger now lets exactly one change through: filling a NULL
  copy with the dossier's own organisation, the rest of the row unchanged.
* 0014: the backfill, in batches, each its own transaction.
* 0015: the indexes, `CREATE INDEX CONCURRENTLY` on PostgreSQL.

SQLite (the embedded default) gets the column; `record_event` sets it there.
"""

from django.db import migrations, models

TABLE = "tracking_dossierevent"
DOSSIERS = "dossiers_dossier"

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


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_WITH_FILL, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_ORIGINAL, params=None)


class Migration(migrations.Migration):
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
        migrations.RunPython(install, uninstall, elidable=False),
    ]
