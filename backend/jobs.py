"""Deferring background jobs.

Jobs are procrastinate tasks (PostgreSQL job queue). Deferring goes through the
Django database connection, so a job deferred inside `transaction.atomic()` is
committed or rolled back with the rows it belongs to: a committed status change
never loses its push, and a rolled-back one never sends one. This holds in the
worker too, where procrastinate's app defers through a connection pool of its
own (outside the job's transaction, so a job deferred by a job could start, and
find nothing, before the rows it is about were committed): `defer` always uses
the Django connection.

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
from procrastinate import jobs, manager, tasks
from procrastinate.contrib.django.django_connector import DjangoConnector

logger = logging.getLogger(__name__)

_in_transaction = manager.JobManager(DjangoConnector())


def defer(
    task: tasks.Task[Any, Any, Any] | str,
    *,
    queueing_lock: str | None = None,
    lock: str | None = None,
    schedule_in: dict[str, int] | None = None,
    schedule_at: dt.datetime | None = None,
    **kwargs: Any,
) -> None:
    """Enqueue `task` with JSON-serialisable kwargs, inside the current transaction.

    `task` is the task or its name: an action deferring a job of its own app's
    `tasks.py` names it, since that module imports the actions it runs (no cycle).
    """
    if isinstance(task, str):
        task = task_named(task)
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
    job = task.configure(**options).job
    jobs.JobDeferrer(job_manager=_in_transaction, job=job).defer(**kwargs)


def task_named(name: str) -> tasks.Task[Any, Any, Any]:
    """A registered task (every app's `tasks` module is loaded when Django starts)."""
    from procrastinate.contrib.django import app

    return app.tasks[name]


def _run_inline(task: tasks.Task[Any, Any, Any], kwargs: dict[str, Any]) -> None:
    # Synchronous on purpose: SQLite takes one writer at a time, and a developer
    # reading the outbox right after a request expects to find the message.
    try:
        task.func(**kwargs)
    except Exception:
        logger.exception("inline job %s failed", task.name)
