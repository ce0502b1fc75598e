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

A task whose arguments carry personal data (phone numbers, texts sent to citizens,
citizen IDs, names, addresses, tokens) says which with `personal_args`, above its
`@app.task`, next to its signature: the job admin shows those arguments masked to
staff other than superusers, and to superusers on the list, whose opening of the job is
an audited look-up (`backend/job_admin.py`). Every other argument is shown as it is:
ids, timestamps, purposes, so that a job can be diagnosed.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import secrets
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import attr
import psycopg
import redis
import requests
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from procrastinate import BaseRetryStrategy, RetryDecision, jobs, manager, tasks
from procrastinate.contrib.django.django_connector import DjangoConnector

logger = logging.getLogger(__name__)

_in_transaction = manager.JobManager(DjangoConnector())

Mask = Callable[[Any], Any]
AnyTask = TypeVar("AnyTask", bound=tasks.Task[Any, Any, Any])

# Task name -> {personal argument: how staff other than superusers see its value}.
PERSONAL_ARGS: dict[str, dict[str, Mask]] = {}


def personal_args(**masks: Mask) -> Callable[[AnyTask], AnyTask]:
    """Declare the arguments of the task below that are personal data, each with how
    the job admin shows it to staff other than superusers (the masking helper of that
    kind of data: `auth.phone.mask_phone`, `withheld`...). A name that is no parameter
    of the task fails at import."""

    def declare(task: AnyTask) -> AnyTask:
        unknown = set(masks) - set(inspect.signature(task.func).parameters)
        if unknown:
            raise TypeError(f"{task.name} has no argument {', '.join(sorted(unknown))}")
        PERSONAL_ARGS[task.name] = dict(masks)
        return task

    return declare


def withheld(value: Any) -> str:
    """A personal value shown not at all (a text sent to a citizen): only whether there
    is one, as the admin shows a booking's street to support staff."""
    return "•••" if value else "—"


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


def defer_many(
    task: tasks.Task[Any, Any, Any] | str,
    kwargs_list: list[dict[str, Any]],
    *,
    schedule_at: dt.datetime | None = None,
) -> None:
    """Enqueue one `task` job per kwargs of `kwargs_list` in one INSERT (procrastinate's
    batch defer), inside the current transaction, as `defer` does for one."""
    if isinstance(task, str):
        task = task_named(task)
    options: dict[str, Any] = {"schedule_at": schedule_at} if schedule_at else {}
    _defer_batch([(task, kwargs) for kwargs in kwargs_list], options)


def defer_each(task_list: list[tasks.Task[Any, Any, Any]], **kwargs: Any) -> None:
    """Enqueue one job of each task of `task_list`, all with the same JSON-serialisable
    kwargs, in one INSERT, inside the current transaction, as `defer` does for one.

    The event log's subscribers (dossiers.events.record_event): one statement per
    event instead of one per subscriber, on the path of every dossier move.
    """
    _defer_batch([(task, kwargs) for task in task_list], {})


def _defer_batch(
    pairs: list[tuple[tasks.Task[Any, Any, Any], dict[str, Any]]], options: dict[str, Any]
) -> None:
    """One job per (task, kwargs) in one INSERT inside the current transaction; on the
    embedded queue (JOBS_INLINE) each is handed over after the commit instead."""
    if not pairs:
        return
    if settings.JOBS_INLINE:
        for task, kwargs in pairs:
            transaction.on_commit(partial(_hand_over, task, options, kwargs))
        return
    deferrers: dict[str, jobs.JobDeferrer] = {}
    batch = []
    for task, kwargs in pairs:
        if task.name not in deferrers:
            job = task.configure(**options).job
            deferrers[task.name] = jobs.JobDeferrer(job_manager=_in_transaction, job=job)
        batch.append(deferrers[task.name].make_new_job(**kwargs))
    _in_transaction.batch_defer_jobs(jobs=batch)


def task_named(name: str) -> tasks.Task[Any, Any, Any]:
    """A registered task (every app's `tasks` module is loaded when Django starts)."""
    from procrastinate.contrib.django import app

    return app.tasks[name]


# What a job meets when a backing service is away (Redis restarting, PostgreSQL cut off,
# the network down): the same job succeeds once the service is back, so it is retried.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
    TimeoutError,
)
_random = secrets.SystemRandom()


def is_infrastructure_error(exc: BaseException) -> bool:
    """`exc`, or an exception it was raised from, is an infrastructure error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, INFRASTRUCTURE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@attr.dataclass(kw_only=True)
class RetryOnInfrastructure(BaseRetryStrategy):
    """Retry a job that failed on an infrastructure error, with capped exponential
    backoff (JOB_RETRY_BASE_SECONDS * 2^attempts, at most JOB_RETRY_MAX_SECONDS, up to
    a fifth off at random so a recovering service is not hit by every job at once),
    up to JOB_RETRY_MAX_ATTEMPTS tries (hours). Any other failure is left to
    `otherwise` (the task's own strategy), or fails the job.

    Every task carries it (a test walks the registry): a job must never be failed
    for good after one attempt because Redis or PostgreSQL was away for a moment.
    """

    otherwise: BaseRetryStrategy | None = None

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        if is_infrastructure_error(exception):
            if job.attempts + 1 >= settings.JOB_RETRY_MAX_ATTEMPTS:
                logger.error(
                    "job %s (%s) failed on an infrastructure error %s times; giving up",
                    job.id,
                    job.task_name,
                    job.attempts + 1,
                )
                return None
            logger.warning(
                "job %s (%s) failed on %s; retrying",
                job.id,
                job.task_name,
                type(exception).__name__,
            )
            return RetryDecision(retry_in={"seconds": infrastructure_backoff(job.attempts)})
        if self.otherwise is not None:
            return self.otherwise.get_retry_decision(exception=exception, job=job)
        return None


def infrastructure_backoff(attempts: int, jitter: float | None = None) -> int:
    """Seconds before the next try, after `attempts` earlier ones (0 after the first)."""
    cap = float(settings.JOB_RETRY_MAX_SECONDS)
    wait = min(cap, settings.JOB_RETRY_BASE_SECONDS * 2.0 ** min(attempts, 32))
    spread = _random.random() if jitter is None else jitter
    return max(1, round(wait - wait * 0.2 * spread))


RETRY_ON_INFRASTRUCTURE = RetryOnInfrastructure()


def _hand_over(
    task: tasks.Task[Any, Any, Any], options: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    from backend import embedded_queue

    try:
        embedded_queue.enqueue(task, options, kwargs)
    except Exception:
        # The change is committed: a job that cannot be queued must not fail the request.
        logger.exception("job %s could not be queued", task.name)
