"""Commits that need not wait for the disk (PostgreSQL's `synchronous_commit`).

For transactions that write nothing but pending state: a database crash within
the next fraction of a second may lose them, and the caller then does it again.
It saves the request a disk flush (WAL fsync), one of the largest parts of its
time. The writes that prove something commit durably as usual; being later in
the log, their flush carries these too (the log is flushed in order, so a commit
that was lost takes every later one with it).
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Expression, TextField


def commit_without_waiting_for_disk() -> None:
    """Let the current transaction commit without waiting for its WAL flush (`SET
    LOCAL`: this transaction only; nothing outside a transaction, nor on SQLite)."""
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


class RelaxedCommit(Expression):
    """`commit_without_waiting_for_disk` as a column of the row read that opens the
    transaction: `set_config(..., is_local => true)` is `SET LOCAL`, evaluated with
    the locked row, so the relaxed commit costs no statement (round trip) of its own.
    Other databases read NULL (they have no such setting)."""

    output_field = TextField()

    def as_sql(self, compiler: Any, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        if connection.vendor == "postgresql":
            return "set_config('synchronous_commit', 'off', true)", []
        return "NULL", []
