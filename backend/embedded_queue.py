"""The job queue of the embedded default: procrastinate in memory, worked in-process.

On the embedded default (SQLite, no worker process) jobs still go through
procrastinate, so they keep the queue's semantics with no second implementation:
retries with backoff (`RetryStrategy`), scheduled jobs (`schedule_at`, e.g. pushes
held until quiet hours end), locks and periodic jobs (`@app.periodic`: deadline
scans, push recovery, clean-ups). Only the storage differs: procrastinate's
`InMemoryConnector` instead of PostgreSQL, and one worker on a daemon thread of the
web process instead of `manage.py worker`.

What is lost against the PostgreSQL queue, on purpose for a development setup: the
queue lives in the process's memory, so jobs not yet run when the process stops
are gone; and it is not transactional, so `backend.jobs.defer` hands a job over
only once the transaction that deferred it has committed (a rolled-back change
still never runs its job). Every call into the connector happens on the worker's
event loop (the connector is not thread-safe); one job runs at a time, since
SQLite takes one writer at a time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from procrastinate import App, tasks, testing, utils
from procrastinate.contrib.django import procrastinate_app

logger = logging.getLogger(__name__)

# How often the worker looks for jobs whose time has come (scheduled, retried).
POLL_SECONDS = 0.5
# How long a deferral may wait for the worker's loop before it is reported lost.
DEFER_TIMEOUT_SECONDS = 10

_lock = threading.Lock()
_app: App | None = None
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_work_task: asyncio.Task[None] | None = None


def install() -> App:
    """The in-memory app holding every task of the project (built once per process).

    Without `procrastinate.contrib.django` installed (it needs PostgreSQL), the tasks
    sit on procrastinate's not-ready blueprint: they move onto this app, which then
    is `procrastinate.contrib.django.app`, as the Django app would be, periodic jobs
    included. With the Django app installed (tests switching to the embedded queue), it
    shares its tasks.
    """
    global _app
    with _lock:
        if _app is not None:
            return _app
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("tasks")  # what procrastinate's Django app does at ready()
        current = procrastinate_app.current_app
        connector = testing.InMemoryConnector()
        if isinstance(current, App):
            # Its tasks, not its periodic jobs: those are deferred through each task's
            # own app (here PostgreSQL), and its worker defers them already.
            _app = App(connector=connector)
            _app.tasks = current.tasks
        else:
            _app = App(connector=connector)
            _app.add_tasks_from(current, namespace="")
            procrastinate_app.current_app = _app
        return _app


def start() -> None:
    """Start the worker thread (idempotent): jobs, scheduled jobs and periodic jobs run."""
    global _loop, _thread
    app = install()
    with _lock:
        if _loop is not None:
            return
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=_serve, args=(app, loop, ready), name="embedded-jobs", daemon=True
        )
        thread.start()
        ready.wait()
        _loop, _thread = loop, thread


def stop(timeout: float = 10) -> None:
    """Stop the worker thread (tests; the web process just exits). Queued jobs stay."""
    global _loop, _thread
    with _lock:
        loop, thread = _loop, _thread
        _loop, _thread = None, None
    if loop is None or thread is None:
        return
    loop.call_soon_threadsafe(lambda: _work_task.cancel() if _work_task else None)
    thread.join(timeout)


def _serve(app: App, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    global _work_task
    asyncio.set_event_loop(loop)
    _work_task = loop.create_task(_work(app))
    loop.call_soon(ready.set)
    try:
        loop.run_until_complete(_work_task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()


async def _work(app: App) -> None:
    while True:
        try:
            async with app.open_async():
                await app.run_worker_async(
                    concurrency=1,
                    install_signal_handlers=False,
                    fetch_job_polling_interval=POLL_SECONDS,
                    delete_jobs="successful",
                    task_middleware=[_own_connections, _own_connections_async],
                )
        except asyncio.CancelledError:
            raise
        except Exception:  # the worker must outlive a bug in one of its side tasks
            logger.exception("embedded job worker stopped; starting it again")
            await asyncio.sleep(1)


def _own_connections(call_next: Any, context: Any, worker: Any) -> Any:
    """A sync job runs on a pool thread: it closes the database connections it opened
    (as Django does at the end of a request), so none is left behind idle."""
    from django.db import connections

    try:
        return call_next()
    finally:
        connections.close_all()


async def _own_connections_async(call_next: Any, context: Any, worker: Any) -> Any:
    """The same for an async job: its ORM calls ran on asgiref's thread for sync code."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    try:
        return await call_next()
    finally:
        await sync_to_async(connections.close_all)()


def enqueue(
    task: tasks.Task[Any, Any, Any], options: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    """Queue `task` (already committed work): the worker runs it as the queue would."""
    start()
    if _loop is None:  # start() sets it; a stop() from another thread may have cleared it
        raise RuntimeError("the embedded job worker is not running")
    deferrer = tasks.configure_task(
        name=task.name,
        job_manager=install().job_manager,
        queue=task.queue,
        priority=task.priority,
        lock=options.get("lock", task.lock),
        queueing_lock=options.get("queueing_lock", task.queueing_lock),
        schedule_at=options.get("schedule_at"),
        schedule_in=options.get("schedule_in"),
    )
    if threading.current_thread() is _thread:
        # Called from the loop itself (sync code inside an async job): waiting would
        # block the loop that must run the deferral, so schedule it instead.
        _loop.create_task(deferrer.defer_async(**kwargs))
        return
    future = asyncio.run_coroutine_threadsafe(deferrer.defer_async(**kwargs), _loop)
    future.result(timeout=DEFER_TIMEOUT_SECONDS)


def run_on_loop(coro: Any) -> Any:
    """Run `coro` on the worker's loop (the connector's only thread) and return its result."""
    start()
    if _loop is None:
        raise RuntimeError("the embedded job worker is not running")
    return asyncio.run_coroutine_threadsafe(coro, _loop).result(timeout=DEFER_TIMEOUT_SECONDS)


def running() -> bool:
    """The worker thread is alive (what /readyz reports on the embedded default)."""
    thread = _thread
    return thread is not None and thread.is_alive()


def idle() -> bool:
    """No job is running and none is due (scheduled ones may wait): for tests."""
    app = install()
    connector = app.connector
    if not isinstance(connector, testing.InMemoryConnector):
        raise TypeError("the embedded queue keeps its jobs in memory")

    async def check() -> bool:
        now = utils.utcnow()
        return not any(
            job["status"] == "doing"
            or (job["status"] == "todo" and (not job["scheduled_at"] or job["scheduled_at"] <= now))
            for job in connector.jobs.values()
        )

    return bool(run_on_loop(check()))
