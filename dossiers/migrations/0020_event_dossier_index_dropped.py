"""The log's single-column index on `dossier_id` goes: the unique (dossier, seq)
and the (dossier, id) index (0019) both lead with the dossier, so every read by
dossier has an index without it, and every event's insert maintained it for
nothing (one B-tree of seven).

Dropped concurrently on PostgreSQL (writers go on; see 0015 for why a concurrent
build is checked), a plain DROP INDEX on SQLite. The index is the one Django
made for the foreign key, found by its column alone (the composite ones are
left); going back builds it again the same way. With no lock timeout (since
2026-12-07, `backend.online_migrations.no_lock_timeout`): a concurrent drop waits for
older transactions without blocking anyone. Only a performance matter for the
release still serving while this one rolls out (see 0019).
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from backend.online_migrations import no_lock_timeout

COLUMN = "dossier_id"


def _single_column_indexes(schema_editor: BaseDatabaseSchemaEditor, table: str) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        found = schema_editor.connection.introspection.get_constraints(cursor, table)
    return sorted(
        name
        for name, info in found.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == [COLUMN]
    )


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    table = apps.get_model("dossiers", "DossierEvent")._meta.db_table
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for name in _single_column_indexes(schema_editor, table):
        with no_lock_timeout(schema_editor):
            schema_editor.execute(f"DROP INDEX{concurrently} {schema_editor.quote_name(name)}")


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    table = apps.get_model("dossiers", "DossierEvent")._meta.db_table
    if _single_column_indexes(schema_editor, table):
        return
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    name = schema_editor._create_index_name(table, [COLUMN])
    with no_lock_timeout(schema_editor):
        schema_editor.execute(
            f"CREATE INDEX{concurrently} {schema_editor.quote_name(name)} ON "
            f"{schema_editor.quote_name(table)} ({schema_editor.quote_name(COLUMN)})"
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0019_event_log_order_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="dossierevent",
                    name="dossier",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="events",
                        to="dossiers.dossier",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
