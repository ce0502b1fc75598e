"""The indexes of the log's new order, the event id alone (tracking/stream.py),
built without blocking writes; the (txid, id) ones they replace are dropped.

`dossier_event_dossier_log`: a dossier's events after a cursor, in log order (a
socket's replay and live reads). `dossier_event_org_log`: an organisation's
events in log order (the replay of its members). The log's own order is its
primary key.

`CREATE INDEX CONCURRENTLY` / `DROP INDEX CONCURRENTLY` on PostgreSQL (see
0015 for a build that fails); plain statements on SQLite.

The drops came in the same release as the code that stopped reading with those
indexes: while that release was rolled out, the previous one, still serving, ran
its (txid, id) reads without them (slower, never wrong: a non-unique index only
speeds reads up). The rule since then (README "Deploying"): drop an index in the
release after the one whose code stopped needing it.
"""

import importlib

from django.db import migrations, models

from backend.online_migrations import RemoveIndexConcurrently

# The operation 0015 defined (a migration module's name cannot be imported plainly).
concurrently = importlib.import_module("dossiers.migrations.0015_event_organisation_indexes")


# Since 2026-12-07 the operation of backend/online_migrations.py (no lock timeout for
# the drop, IF EXISTS: see 0015). Databases that applied this migration are not affected.
RemoveIndexConcurrentlyOnPostgres = RemoveIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0018_event_id_taken_by_a_known_writer"),
    ]

    operations = [
        concurrently.AddIndexConcurrentlyOnPostgres(
            model_name="dossierevent",
            index=models.Index(fields=["dossier", "id"], name="dossier_event_dossier_log"),
        ),
        concurrently.AddIndexConcurrentlyOnPostgres(
            model_name="dossierevent",
            index=models.Index(
                condition=models.Q(("organisation__isnull", False)),
                fields=["organisation", "id"],
                name="dossier_event_org_log",
            ),
        ),
        RemoveIndexConcurrentlyOnPostgres(model_name="dossierevent", name="dossier_event_log_order"),
        RemoveIndexConcurrentlyOnPostgres(
            model_name="dossierevent", name="dossier_event_audience_order"
        ),
        RemoveIndexConcurrentlyOnPostgres(model_name="dossierevent", name="dossier_event_org_order"),
    ]
