"""Index and constraint operations for migrations of tables that stay in use while they
run.

The release process migrates while the previous release serves (README
"Deploying"), with every lock wait bounded (`manage.py migrate`,
MIGRATION_LOCK_TIMEOUT_MS). A plain CREATE INDEX holds a SHARE lock on its table for
the whole build (every write waits), a plain DROP INDEX an ACCESS EXCLUSIVE one: on
the big tables (tests/backend/test_migration_locks.py names them) an index is built
and dropped CONCURRENTLY.

On PostgreSQL these are django-pg-migration-tools' `SaferAddIndexConcurrently` and
`SaferRemoveIndexConcurrently`: the statement runs with no lock timeout (a
concurrent build or drop waits for the transactions older than it without
blocking anyone, and a timeout would leave an INVALID index behind), an INVALID
index left by a failed build is dropped first, and IF [NOT] EXISTS makes running
the operation again harmless. Elsewhere (SQLite, the embedded default, runs the
same migrations) a plain CREATE / DROP INDEX. Operations are not atomic: a
migration using them sets `atomic = False`.

A CHECK constraint added to a big table as Django adds it reads every row under the
ALTER TABLE's ACCESS EXCLUSIVE lock (tests/backend/test_migration_locks.py finds it):
`AddCheckConstraint` is the library's `SaferAddCheckConstraint` on PostgreSQL, ADD
CONSTRAINT ... NOT VALID (a moment's lock, bounded by the migration's lock_timeout,
checking the rows written from then on), then VALIDATE CONSTRAINT in a transaction of
its own (the rows read under SHARE UPDATE EXCLUSIVE: writes go on); run again, a NOT
VALID constraint left by an interrupted run is validated.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django_pg_migration_tools.operations import (
    SaferAddCheckConstraint,
    SaferAddIndexConcurrently,
    SaferRemoveIndexConcurrently,
)


class _SaferOnPostgres(Operation):
    """Runs the library's safer operation (`safer`) on PostgreSQL, its Django base's
    plain one elsewhere, both ways."""

    def safer(self) -> Operation:
        raise NotImplementedError

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            self.safer().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            self.safer().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class AddIndexConcurrently(_SaferOnPostgres, migrations.AddIndex):
    """`CREATE INDEX CONCURRENTLY IF NOT EXISTS` on PostgreSQL, CREATE INDEX elsewhere."""

    atomic = False

    def safer(self) -> Operation:
        return SaferAddIndexConcurrently(model_name=self.model_name, index=self.index)


class AddCheckConstraint(_SaferOnPostgres, migrations.AddConstraint):
    """ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT, on PostgreSQL; Django's
    AddConstraint elsewhere."""

    atomic = False
    model_name: str
    constraint: models.CheckConstraint

    def safer(self) -> Operation:
        return SaferAddCheckConstraint(model_name=self.model_name, constraint=self.constraint)


class RemoveIndexConcurrently(_SaferOnPostgres, migrations.RemoveIndex):
    """`DROP INDEX CONCURRENTLY IF EXISTS` on PostgreSQL, DROP INDEX elsewhere."""

    atomic = False

    def safer(self) -> Operation:
        return SaferRemoveIndexConcurrently(model_name=self.model_name, name=self.name)


@contextmanager
def no_lock_timeout(schema_editor: BaseDatabaseSchemaEditor) -> Iterator[None]:
    """For a concurrent index statement written by hand (a RunPython of a
    non-atomic migration): no lock timeout while it runs, the session's back after."""
    if schema_editor.connection.vendor != "postgresql":
        yield
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        (previous,) = cursor.fetchone()
        cursor.execute("SET lock_timeout = 0")
    try:
        yield
    finally:
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [previous])
