"""Deferring background jobs.

Jobs are procrastinate tasks (PostgreSQL job queue). Deferring goes through the
Django database connection, so a job deferred inside `transaction.atomic()` is
committed or rolled back with the rows it belongs to: a committed status change
never loses its push, and a rolled-back one never sends one. This holds in the
worker too, where procrastinate's app defers through a connection pool of its
own (outside the job's transaction, so a job deferred by a job could start, and
find nothing, before the rows it is about were committed): `defer` always uses
the Django connection.

On the embedded default (SQLite, JOBS_INLINE=1) the same procrastinate tasks go
to an in-memory queue worked by a thread of the web process
(`backend.embedded_queue`): retries with backoff, scheduled and periodic jobs
behave as with the worker. That queue is not transactional, so the job is handed
over once the surrounding transaction commits (and never if it rolls back).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from procrastinate import jobs, manager, tasks
from procrastinate.contrib.django.django_connector import DjangoConnector

logger = logging.getLogger(__name__)

_in_transaction = manager.JobManager(DjangoConnector())


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
    options: dict[str, Any] = {}
    if queueing_lock:
        options["queueing_lock"] = queueing_lock
    if lock:
        options["lock"] = lock
    if schedule_in:
        options["schedule_in"] = schedule_in
    if schedule_at:
        options["schedule_at"] = schedule_at
    if settings.JOBS_INLINE:
        transaction.on_commit(lambda: _hand_over(task, options, kwargs))
        return
    job = task.configure(**options).job
    jobs.JobDeferrer(job_manager=_in_transaction, job=job).defer(**kwargs)


def _hand_over(
    task: tasks.Task[Any, Any, Any], options: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    from backend import embedded_queue

    try:
        embedded_queue.enqueue(task, options, kwargs)
    except Exception:
        # The change is committed: a job that cannot be queued must not fail the request.
        logger.exception("job %s could not be queued", task.name)
