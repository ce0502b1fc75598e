"""Deferring background jobs.

Jobs are procrastinate tasks (PostgreSQL job queue). Deferring goes through the
Django database connection, so a job deferred inside `transaction.atomic()` is
committed or rolled back with the rows it belongs to: a committed status change
never loses its push, and a rolled-back one never sends one.

On the embedded default (SQLite, JOBS_INLINE=1) there is no queue: the job runs
in the web process once the surrounding transaction commits. Periodic jobs do
not run there: `python manage.py worker` needs PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from procrastinate import tasks

logger = logging.getLogger(__name__)


def defer(
    task: tasks.Task[Any, Any, Any],
    *,
    queueing_lock: str | None = None,
    lock: str | None = None,
    schedule_in: dict[str, int] | None = None,
    schedule_at: dt.datetime | None = None,
    **kwargs: Any,
) -> None:
    """Enqueue `task` with JSON-serialisable kwargs, inside the current transaction."""
    if settings.JOBS_INLINE:
        transaction.on_commit(lambda: _run_inline(task, kwargs))
        return
    options: dict[str, Any] = {}
    if queueing_lock:
        options["queueing_lock"] = queueing_lock
    if lock:
        options["lock"] = lock
    if schedule_in:
        options["schedule_in"] = schedule_in
    if schedule_at:
        options["schedule_at"] = schedule_at
    task.configure(**options).defer(**kwargs)


def _run_inline(task: tasks.Task[Any, Any, Any], kwargs: dict[str, Any]) -> None:
    # Synchronous on purpose: SQLite takes one writer at a time, and a developer
    # reading the outbox right after a request expects to find the message.
    try:
        task.func(**kwargs)
    except Exception:
        logger.exception("inline job %s failed", task.name)
