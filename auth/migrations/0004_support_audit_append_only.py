"""Support audit records are append-only: PostgreSQL refuses UPDATE and DELETE.

TRUNCATE (used by test teardown and by a deliberate purge) stays possible for
the database owner; ordinary writes through the ORM or SQL cannot change history.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION accounts_support_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'support audit records are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accounts_support_audit_append_only
    BEFORE UPDATE OR DELETE ON accounts_supportauditrecord
    FOR EACH ROW EXECUTE FUNCTION accounts_support_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS accounts_support_audit_append_only ON accounts_supportauditrecord;
DROP FUNCTION IF EXISTS accounts_support_audit_append_only();
"""


# The embedded development database (SQLite) keeps the same promise.
SQLITE_CREATE = [
    """CREATE TRIGGER accounts_support_audit_no_update BEFORE UPDATE ON accounts_supportauditrecord
    BEGIN SELECT RAISE(ABORT, 'support audit records are append-only'); END;""",
    """CREATE TRIGGER accounts_support_audit_no_delete BEFORE DELETE ON accounts_supportauditrecord
    BEGIN SELECT RAISE(ABORT, 'support audit records are append-only'); END;""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS accounts_support_audit_no_update;",
    "DROP TRIGGER IF EXISTS accounts_support_audit_no_delete;",
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_CREATE:
            schema_editor.execute(statement)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_organisation_invitations_support"),
    ]

    operations = [migrations.RunPython(create, drop)]
