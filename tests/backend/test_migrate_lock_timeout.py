"""`manage.py migrate` waits a bounded time for a table's lock, tries again, and
fails clearly (backend/management/commands/migrate.py; README "Deploying").

The subject is dossiers 0018, whose ALTER TABLE needs ACCESS EXCLUSIVE on the event
log: the database is taken back to 0017, and a long transaction that read the log
(what a report or a session idle in a transaction does) holds it. Django's own
migrate would wait behind it for as long as it lasts, and every query of the log
would queue behind the waiting ALTER.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings

THE_ALTER = ("dossiers", "0018_event_id_taken_by_a_known_writer")
BEFORE = [("dossiers", "0017_english_help_texts")]
# Guards only: how long a test lets a stuck migrate hang before it fails (Django's
# own migrate, which never gives up, fails here).
GUARD = 120


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def applied(migration: tuple[str, str]) -> bool:
    return migration in MigrationRecorder(connection).applied_migrations()


@pytest.fixture
def log_before_0018(transactional_db: None) -> Iterator[None]:
    MigrationExecutor(connection).migrate(BEFORE)
    try:
        yield
    finally:
        migrate_to_latest()


def server_connection() -> psycopg.Connection[Any]:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"] or "postgres",
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )


class LongTransaction:
    """A session that read the event log and keeps its transaction open (it holds
    ACCESS SHARE on the table until it ends)."""

    def __enter__(self) -> LongTransaction:
        self.session = server_connection()
        self.session.execute("SELECT count(*) FROM tracking_dossierevent")
        (self.pid,) = self.session.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        return self

    def end(self) -> None:
        if not self.session.closed:
            self.session.commit()
            self.session.close()

    def __exit__(self, *exc_info: object) -> None:
        self.end()


class Signalling(io.StringIO):
    """An output stream that tells when a line containing `needle` was written."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.needle in self.getvalue():
            self.seen.set()
        return written


class Migrate:
    """`manage.py migrate dossiers 0018` in a thread of its own (its own database
    session), so that the test can act while it waits."""

    def __init__(self) -> None:
        self.stdout = io.StringIO()
        self.stderr = Signalling("Trying again.")
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            call_command("migrate", *THE_ALTER, stdout=self.stdout, stderr=self.stderr)
        except BaseException as exc:  # the test reads it
            self.error = exc
        finally:
            connection.close()

    def start(self) -> Migrate:
        self.thread.start()
        return self

    def ended(self) -> bool:
        self.thread.join(timeout=GUARD)
        return not self.thread.is_alive()


@override_settings(
    MIGRATION_LOCK_TIMEOUT_MS=200, MIGRATION_LOCK_RETRIES=2, MIGRATION_LOCK_RETRY_MAX_WAIT_MS=1
)
def test_a_migration_behind_a_long_transaction_gives_up_and_says_who_holds_it(
    log_before_0018: None,
) -> None:
    with LongTransaction() as holder:
        migrate = Migrate().start()
        ended = migrate.ended()
        still_open = not holder.session.closed
    assert ended, "migrate was still waiting for the lock"
    assert still_open
    assert isinstance(migrate.error, CommandError)
    message = str(migrate.error)
    assert message.startswith(
        "migrate: dossiers.0018_event_id_taken_by_a_known_writer waited"
        " MIGRATION_LOCK_TIMEOUT_MS (200 ms) for a lock and gave up (try 3 of 3);"
        " it was rolled back: nothing of it is applied."
    )
    assert f"pid {holder.pid} (" in message
    assert "run migrate again" in message
    assert migrate.stderr.getvalue().count("Trying again.") == 2
    assert not applied(THE_ALTER)
    with connection.cursor() as cursor:  # the rolled-back ALTER left nothing behind
        cursor.execute("SELECT to_regclass('tracking_dossierevent_log_seq')")
        assert cursor.fetchone() == (None,)


@override_settings(
    MIGRATION_LOCK_TIMEOUT_MS=200, MIGRATION_LOCK_RETRIES=50, MIGRATION_LOCK_RETRY_MAX_WAIT_MS=1
)
def test_the_migration_goes_through_once_the_long_transaction_ends(
    log_before_0018: None,
) -> None:
    with LongTransaction() as holder:
        migrate = Migrate().start()
        assert migrate.stderr.seen.wait(timeout=GUARD), "migrate never gave up waiting"
        holder.end()
    assert migrate.ended()
    assert migrate.error is None, migrate.error
    assert applied(THE_ALTER)
    assert "(try 1 of 51)" in migrate.stderr.getvalue()


WAITING_FOR_THE_LOG = """
SELECT count(*) FROM pg_locks
WHERE relation = 'tracking_dossierevent'::regclass AND mode = 'AccessExclusiveLock'
  AND NOT granted
"""


@override_settings(
    MIGRATION_LOCK_TIMEOUT_MS=2000, MIGRATION_LOCK_RETRIES=0, MIGRATION_LOCK_RETRY_MAX_WAIT_MS=1
)
def test_reads_queued_behind_the_waiting_migration_go_on_and_no_retries_is_one_try(
    log_before_0018: None,
) -> None:
    with LongTransaction(), server_connection() as reader:
        migrate = Migrate().start()
        # Until the ALTER waits for the log (queued behind the long transaction)...
        deadline = reader.execute(f"SELECT clock_timestamp() + interval '{GUARD} s'").fetchone()
        while not (reader.execute(WAITING_FOR_THE_LOG).fetchone() or (0,))[0]:
            now_passed = reader.execute("SELECT clock_timestamp() > %s", deadline).fetchone()
            assert not (now_passed or (False,))[0], "migrate never waited for the log"
        # ... then a read of the log queues behind the ALTER, and goes on once the
        # ALTER gives up (behind Django's own migrate it would wait as long as the
        # long transaction: its statement_timeout fails it).
        reader.execute("SET statement_timeout = '60s'")
        assert reader.execute("SELECT count(*) FROM tracking_dossierevent").fetchone() == (0,)
        ended = migrate.ended()
    assert ended, "migrate was still waiting for the lock"
    assert "gave up (try 1 of 1)" in str(migrate.error)
    assert "Trying again." not in migrate.stderr.getvalue()
    assert not applied(THE_ALTER)


def test_the_release_runs_the_bounded_migrate_with_safe_defaults() -> None:
    from django.conf import settings

    assert get_commands()["migrate"] == "backend"
    assert settings.MIGRATION_LOCK_TIMEOUT_MS == 2000
    assert settings.MIGRATION_LOCK_RETRIES == 10
    assert settings.MIGRATION_LOCK_RETRY_MAX_WAIT_MS == 10_000
