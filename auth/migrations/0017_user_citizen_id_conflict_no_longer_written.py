"""Release 1 of the two that remove `User.citizen_id_conflict`: nothing writes or
reads it any more (its conflicts are `CitizenIdConflict` rows since 0016); release 2
drops the column.

- This release's model has no such field: no INSERT or SELECT names the column (and
  bench/scale.py's seed no longer writes it).
- PostgreSQL: the column gets the default '' (it is NOT NULL and had none in the
  database: this release's inserts leave it out). A catalogue change holding ACCESS
  EXCLUSIVE on the users' table for an instant, its wait bounded by `manage.py
  migrate` (MIGRATION_LOCK_TIMEOUT_MS). The previous release, still serving, reads
  '' for the accounts this one makes: no conflict, as it was.
- SQLite (the embedded default: one process, no rolling deploy): the column is
  dropped at once, after 0016 carried it over.

Release 2, once no process of a release before this one runs: 0016's carry-over run
again (for what the previous release wrote while this one rolled out), then on
PostgreSQL `ALTER TABLE accounts_user DROP COLUMN IF EXISTS citizen_id_conflict`
(catalogue only, bounded the same way); nothing more on SQLite (README "Deploying").
"""

from typing import Any

from django.db import migrations

TABLE = "accounts_user"


def forward(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN citizen_id_conflict SET DEFAULT ''")
    elif vendor == "sqlite":
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP COLUMN citizen_id_conflict")


def backward(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN citizen_id_conflict DROP DEFAULT")
    elif vendor == "sqlite":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} ADD COLUMN citizen_id_conflict varchar(12) NOT NULL DEFAULT ''"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0016_citizen_id_conflicts_carried_over"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="user", name="citizen_id_conflict"),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
