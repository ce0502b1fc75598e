"""The dossier event log is append-only: the database refuses UPDATE and DELETE.

No code path changes an event; this makes it true for raw SQL, the admin and the
ORM alike. TRUNCATE (test database flushes) is a different statement and stays allowed.
"""

from django.db import migrations

TABLE = "tracking_dossierevent"

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION tracking_dossierevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'dossier events are append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tracking_dossierevent_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION tracking_dossierevent_append_only();
"""
POSTGRES_BACKWARD = f"""
DROP TRIGGER IF EXISTS tracking_dossierevent_append_only ON {TABLE};
DROP FUNCTION IF EXISTS tracking_dossierevent_append_only();
"""
SQLITE_FORWARD = [
    f"CREATE TRIGGER tracking_dossierevent_no_update BEFORE UPDATE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'dossier events are append-only (UPDATE refused)'); END;",
    f"CREATE TRIGGER tracking_dossierevent_no_delete BEFORE DELETE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'dossier events are append-only (DELETE refused)'); END;",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS tracking_dossierevent_no_update;",
    "DROP TRIGGER IF EXISTS tracking_dossierevent_no_delete;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0001_initial"),
    ]

    operations = [migrations.RunPython(forward, backward)]
