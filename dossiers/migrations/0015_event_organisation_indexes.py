"""The indexes of the copy of the organisation on events and of the at-risk scan
(3 of 3), built without blocking writes.

`dossier_event_org_order`: an organisation's events in log order (the replay of its
members, tracking/stream.py). `dossier_unwarned_deadline`: running dossiers neither
overdue nor warned yet (the at-risk scan, dossiers/monitoring.py).

`CREATE INDEX CONCURRENTLY` on PostgreSQL: no write lock on the live tables (it
waits for transactions open at its start, and reads the table twice). A build that
fails leaves an INVALID index of that name: `DROP INDEX CONCURRENTLY` it, then run
this again. Plain CREATE INDEX on SQLite (the embedded default).
"""

import django.db.models.functions.comparison
from django.db import migrations, models


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
        ("dossiers", "0014_event_organisation_backfill"),
    ]

    operations = [
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
