"""Races made deterministic: each call in its own thread (so its own database
connection), and a hook on one connection's SQL that holds it, or signals, at the
racy point. Tests using them need `django_db(transaction=True)`: the threads must
see each other's commits."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, connections

from fakes.harness import wait_until

WAIT_SECONDS = 15  # a bound on every wait: a broken test fails, it does not hang

Statement = Callable[[str], bool]


def in_threads(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread; their results (or the exception each raised)."""
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            results[index] = call()
        except Exception as exc:  # the test looks at it
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=4 * WAIT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a racing call never finished"
    return results


@contextmanager
def on_sql(
    *,
    before: tuple[Statement, Callable[[], None]] | None = None,
    after: tuple[Statement, Callable[[], None]] | None = None,
) -> Iterator[None]:
    """On this thread's connection, call `before[1]` just before each statement
    `before[0]` matches is sent, and `after[1]` once each statement `after[0]`
    matches has run."""

    def hook(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if before is not None and before[0](sql):
            before[1]()
        result = execute(sql, params, many, context)
        if after is not None and after[0](sql):
            after[1]()
        return result

    with connection.execute_wrapper(hook):
        yield


def statement(verb: str, table: str, *, locking: bool | None = None) -> Statement:
    """Matches SQL starting with `verb` on `table` (with `locking`: that does, or does
    not, end with FOR UPDATE)."""

    def matches(sql: str) -> bool:
        if not sql.lstrip().upper().startswith(verb) or f'"{table}"' not in sql:
            return False
        return locking is None or ("FOR UPDATE" in sql or "FOR NO KEY UPDATE" in sql) == locking

    return matches


def waiting_for(event: threading.Event) -> Callable[[], None]:
    def wait() -> None:
        assert event.wait(WAIT_SECONDS), "the other side of the race never came"

    return wait


def waiting_for_a_lock() -> bool:
    """Whether a session of the test database waits for a lock now (a row lock another
    transaction holds): what a test of who waits for whom looks for, never a sleep."""
    with connection.cursor() as cursor:
        # A transaction keeps its first view of pg_stat_activity: asked from inside
        # one (a test holding a lock), the view is dropped, so each call sees now.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def until_a_lock_wait(
    *, unless: threading.Event | None = None, timeout: float = WAIT_SECONDS
) -> bool:
    """Return once a session of the test database waits for a lock (True), or once
    `unless` is set (False: the other side finished without waiting); TimeoutError
    after `timeout` seconds with neither, so a broken test fails instead of hanging."""

    def seen() -> str | None:
        if waiting_for_a_lock():
            return "lock"
        return "unless" if unless is not None and unless.is_set() else None

    found = wait_until(seen, timeout=timeout, interval=0.01, what="a session waiting for a lock")
    return found == "lock"
