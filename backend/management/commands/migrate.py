"""`manage.py migrate` with a bounded wait for every lock, on PostgreSQL.

The release process migrates while the previous release still serves (README
"Deploying"). A schema change that needs a table's ACCESS EXCLUSIVE lock (ALTER
TABLE, a trigger, a plain DROP INDEX) waits behind every transaction open on that
table, and every query of the table that comes after it waits behind *it*: one long
transaction (a report, a session idle in a transaction) would stop every request
that touches the table for as long. So every statement of every migration runs with
`lock_timeout = MIGRATION_LOCK_TIMEOUT_MS`, set on the session: it covers RunPython
and RunSQL, other apps' migrations, and every migration to come, without anyone
having to remember it. A migration that times out is rolled back (an atomic one
entirely) and tried again after a back-off, from that migration on,
MIGRATION_LOCK_RETRIES more times; then the command fails, naming the migration
and the long transactions that are the likely holders.

django-pg-migration-tools' `migrate_with_timeouts` does the setting and its reset,
the back-off and the recognition of the error; this command takes its options'
defaults from the settings (its `--lock-timeout-in-ms`, `--lock-timeout-max-retries`
... still override them), is Django's own on SQLite or with a timeout of 0, runs one
migrate at a time per database (a second release run waits for the first, then
finds nothing to do), and says what waited for what.

Concurrent index builds and drops run with no lock timeout
(`backend/online_migrations.py`): they wait for older transactions without
blocking anyone, and a timeout would leave an INVALID index behind.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django_pg_migration_tools import timeouts
from django_pg_migration_tools.management.commands import migrate_with_timeouts as library

# One migrate at a time per database: the project's advisory lock space (21586, as
# the event writers' lock of dossiers migration 0018), key 2.
MIGRATE_LOCK = (21586, 2)

# Who is likely to hold the lock a migration waited for: the transactions open on
# the database for at least as long as it waited. Never the query text (it may
# carry personal data).
LONG_TRANSACTIONS_SQL = """
SELECT pid, coalesce(nullif(application_name, ''), usename::text, '-'), coalesce(state, '-'),
       floor(extract(epoch FROM now() - xact_start))::int
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
  AND now() - xact_start >= %s * interval '1 millisecond'
ORDER BY xact_start
LIMIT 10
"""


class Command(library.Command):
    help = (
        "Django's migrate. On PostgreSQL every lock wait of a migration is bounded by"
        " MIGRATION_LOCK_TIMEOUT_MS; a migration that times out rolls back and is tried"
        " again MIGRATION_LOCK_RETRIES times (README, Deploying)."
    )

    running: Migration | None = None

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        max_wait = settings.MIGRATION_LOCK_RETRY_MAX_WAIT_MS
        parser.set_defaults(
            lock_timeout_in_ms=settings.MIGRATION_LOCK_TIMEOUT_MS or None,
            lock_timeout_max_retries=settings.MIGRATION_LOCK_RETRIES,
            lock_timeout_retry_max_wait_in_ms=max_wait,
            lock_timeout_retry_min_wait_in_ms=min(1000, max_wait),
        )

    def migration_progress_callback(
        self, action: str, migration: Migration | None = None, fake: bool = False
    ) -> None:
        if action in ("apply_start", "unapply_start"):
            self.running = migration
        elif action in ("apply_success", "unapply_success"):
            self.running = None
        super().migration_progress_callback(action, migration, fake)

    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"]
        connection = connections[database]
        bounds = library.MigrationTimeoutOptions.from_dictionary(options)  # takes its options
        if connection.vendor != "postgresql" or bounds.lock_timeout is None:
            DjangoMigrate.handle(self, *args, **options)
            return
        bounds.validate()
        retry = library.MigrateRetryStrategy(timeout_options=bounds)
        tries = bounds.lock_retry_options.max_retries + 1
        waited_ms = int(bounds.lock_timeout.total_seconds() * 1000)
        started = time.time()
        with one_migrate_at_a_time(connection):
            for attempt in range(1, tries + 1):
                self.running = None
                try:
                    with timeouts.apply_timeouts(
                        using=database,
                        lock_timeout=bounds.lock_timeout,
                        statement_timeout=bounds.statement_timeout,
                    ):
                        DjangoMigrate.handle(self, *args, **options)
                    return
                except timeouts.DBLockTimeoutError as exc:
                    if self.running is not None and self.verbosity >= 1:
                        self.stdout.write(" waited too long for a lock")  # ends "Applying ..."
                    waited = self.lock_wait(connection, waited_ms, attempt, tries)
                    if attempt == tries:
                        raise CommandError(
                            waited + " When they have ended (or `SELECT pg_terminate_backend("
                            "pid)` has ended them), run migrate again: what it applied before"
                            " stays applied."
                        ) from exc
                    self.stderr.write(waited + " Trying again.")
                    retry.increment_retry_count()
                    retry.wait()
                    retry.attempt_callback(exc, io.StringIO(), started, database)

    def lock_wait(
        self, connection: BaseDatabaseWrapper, waited_ms: int, attempt: int, tries: int
    ) -> str:
        """What waited, what that undid, and who is likely to hold the lock."""
        migration = self.running
        name = f"{migration.app_label}.{migration.name}" if migration else "a migration"
        if migration is None or migration.atomic:
            undone = "it was rolled back: nothing of it is applied"
        else:
            undone = (
                "it is not atomic: its operations before the one that waited stay applied"
                " (concurrent index operations are safe to run again)"
            )
        with connection.cursor() as cursor:
            cursor.execute(LONG_TRANSACTIONS_SQL, [waited_ms])
            holders = [
                f"pid {pid} ({application}, {state}, open {seconds} s)"
                for pid, application, state, seconds in cursor.fetchall()
            ]
        return (
            f"migrate: {name} waited MIGRATION_LOCK_TIMEOUT_MS ({waited_ms} ms) for a lock"
            f" and gave up (try {attempt} of {tries}); {undone}. Transactions open at"
            f" least that long, the likely holders: {', '.join(holders) or 'none left'}."
        )


@contextmanager
def one_migrate_at_a_time(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Waits for another migrate of the same database to end (a session lock,
    released at the end; the process ending releases it too)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", MIGRATE_LOCK)
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", MIGRATE_LOCK)
        except DatabaseError:  # the session is gone, and its lock with it
            pass
