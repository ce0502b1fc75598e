"""The indexes of the log's new order, the event id alone (tracking/stream.py),
built without blocking writes; the (txid, id) ones they replace are dropped.

`dossier_event_dossier_log`: a dossier's events after a cursor, in log order (a
socket's replay and live reads). `dossier_event_org_log`: an organisation's
events in log order (the replay of its members). The log's own order is its
primary key.

`CREATE INDEX CONCURRENTLY` / `DROP INDEX CONCURRENTLY` on PostgreSQL (see
0015 for a build that fails); plain statements on SQLite.
"""

import importlib

from django.db import migrations, models

# The operation 0015 defined (a migration module's name cannot be imported plainly).
concurrently = importlib.import_module("dossiers.migrations.0015_event_organisation_indexes")


class RemoveIndexConcurrentlyOnPostgres(migrations.RemoveIndex):
    """`DROP INDEX CONCURRENTLY` on PostgreSQL, a plain DROP INDEX elsewhere."""

    atomic = False

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, index, concurrently=True)
        else:
            schema_editor.remove_index(model, index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, index, concurrently=True)
        else:
            schema_editor.add_index(model, index)


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
