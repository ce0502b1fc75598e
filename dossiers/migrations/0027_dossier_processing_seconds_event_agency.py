"""The dossier's stored working time and the event's agency (1 of 3, for live tables).

* `Dossier.processing_seconds`: the working time from acceptance (else submission) to
  the result, less the supplements' pauses, written by the finishing move
  (`lifecycle.complete`); the performance report sums it in SQL. NULL on the dossiers
  finished before (the report works theirs out as before; no backfill).
* `DossierEvent.agency`: the agency that held the dossier when the event was written
  (`record_event` sets it); the report reads an agency's payment requests by it
  (0028 fills the payment requests written before, 0029 indexes them).

ADD COLUMN, nullable, no default, no constraint (no CHECK, no foreign key: either
would read every row under the ALTER TABLE's lock): a catalogue change, no rewrite or
scan, each lock bounded by the migration's lock_timeout. And the triggers (PostgreSQL),
as 0013 did for the organisation: BEFORE INSERT fills the event's agency from its
dossier whenever it is NULL, so rows the previous release writes during a rolling
deploy carry it too; the append-only trigger lets one more change through: filling a
NULL agency with the dossier's own, the rest of the row unchanged (0028's backfill).

SQLite (the embedded default) gets the columns; `record_event` sets the agency there.
"""

from django.db import migrations, models

TABLE = "tracking_dossierevent"
DOSSIERS = "dossiers_dossier"

# The function of 0013 with a second exception; that of 0013 going back.
APPEND_ONLY_WITH_FILLS = f"""
CREATE OR REPLACE FUNCTION tracking_dossierevent_append_only() RETURNS trigger AS $$
BEGIN
    -- The changes allowed: filling the copy of the dossier's organisation (dossiers
    -- 0013) or agency (0027) on a row written before the column existed, nothing else.
    IF TG_OP = 'UPDATE' AND OLD.organisation_id IS NULL
       AND to_jsonb(NEW) - 'organisation_id' = to_jsonb(OLD) - 'organisation_id'
       AND NEW.organisation_id = (
           SELECT d.organisation_id FROM {DOSSIERS} d WHERE d.id = NEW.dossier_id) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.agency_id IS NULL
       AND to_jsonb(NEW) - 'agency_id' = to_jsonb(OLD) - 'agency_id'
       AND NEW.agency_id = (
           SELECT d.agency_id FROM {DOSSIERS} d WHERE d.id = NEW.dossier_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'dossier events are append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tracking_dossierevent_agency() RETURNS trigger AS $$
BEGIN
    IF NEW.agency_id IS NULL THEN
        NEW.agency_id := (SELECT d.agency_id FROM {DOSSIERS} d WHERE d.id = NEW.dossier_id);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS tracking_dossierevent_agency ON {TABLE};
CREATE TRIGGER tracking_dossierevent_agency
    BEFORE INSERT ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION tracking_dossierevent_agency();
"""

WITHOUT_AGENCY = f"""
DROP TRIGGER IF EXISTS tracking_dossierevent_agency ON {TABLE};
DROP FUNCTION IF EXISTS tracking_dossierevent_agency();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_WITH_FILLS, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        organisation = import_module("dossiers.migrations.0013_event_organisation")
        schema_editor.execute(WITHOUT_AGENCY, params=None)
        schema_editor.execute(organisation.APPEND_ONLY_WITH_FILL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("dossiers", "0026_dossier_received_finished_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="dossier",
            name="processing_seconds",
            field=models.IntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="dossierevent",
            name="agency",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=models.deletion.DO_NOTHING,
                related_name="+",
                to="dossiers.agency",
            ),
        ),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
