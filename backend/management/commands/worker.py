"""Run the job worker so that a supervisor can keep it alive (the Procfile's `worker`).

procrastinate's own `manage.py procrastinate worker` (3.x) stops by itself when one of
its database tasks fails (the LISTEN connection, the heartbeat): it then waits for the
database to come back to unregister, and exits with status 0, which a supervisor that
restarts on failure takes for a deliberate stop. This command runs the same worker and
exits with status 0 only when it was asked to stop (SIGTERM, SIGINT). When the worker
stops by itself, or fails, it logs why and exits with status 1, within
WORKER_EXIT_TIMEOUT_SECONDS even if the database never answers: a supervisor (systemd
`Restart=always`, Procfile platforms) starts it again, and a worker started while the
database is unreachable fails too, so it keeps being restarted until the database is
back. Leaving while jobs run is no worse than a crash: their rows stay `doing` and the
recovery (backend.recovery, which every worker runs every JOB_RECOVERY_SECONDS beside
its jobs) retries them within about 15 s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils.module_loading import import_string
from procrastinate import worker as procrastinate_worker
from procrastinate.contrib.django import app as django_app
from procrastinate.contrib.django import django_connector

from backend.gc_freeze import freeze_startup_objects

logger = logging.getLogger("backend.worker")

EXIT_FAILURE = 1
# The earliest job scheduled later than now in the worker's queues (NULL: none).
NEXT_SCHEDULED_SQL = """
SELECT extract(epoch FROM min(scheduled_at) - now()) AS wait
FROM procrastinate_jobs
WHERE status = 'todo' AND scheduled_at > now()
  AND (%(queues)s::varchar[] IS NULL OR queue_name = ANY(%(queues)s::varchar[]))
"""
# Woken this long after a job's time (the clocks of PostgreSQL and of the sleep).
SCHEDULE_MARGIN_SECONDS = 0.01
# After a job is inserted, the next lookup waits this long (a fan-out inserts many).
SCHEDULE_COALESCE_SECONDS = 0.05
# Threads of the worker's loop beyond one per job, for what else runs in its default
# executor (the recovery's database work, procrastinate's own sync calls).
SPARE_THREADS = 2


def describe(exc: BaseException) -> str:
    """The innermost cause of `exc`, as `Class: first line` (no parameters, no DSN).

    psycopg's messages name the host and port, never the password."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    first_line = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first_line[:200]}" if first_line else type(exc).__name__


def keep_a_connection_per_job(concurrency: int) -> None:
    """With the connection pool (DATABASE_POOL), keep one connection open per job the
    worker runs at once (each job's thread holds one while it runs): with the web's
    minimum (DATABASE_POOL_MIN_SIZE, 2) a burst of jobs after a quiet spell waited for
    the pool to connect the others. The maximum leaves room for the loop's spare
    threads too (the recovery's). Before the pool is made (it reads these options)."""
    pool = connections["default"].settings_dict.get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        pool["min_size"] = max(int(pool.get("min_size", 0)), concurrency)
        pool["max_size"] = max(int(pool.get("max_size", 0)), concurrency + SPARE_THREADS)


def warm_up() -> None:
    """Run settings.WORKER_WARM_UP before listening for jobs; a failure is only logged
    (the job that needs the thing builds it, and reports its own error)."""
    for path in settings.WORKER_WARM_UP:
        try:
            import_string(path)()
        except Exception as exc:
            logger.warning("worker warm-up %s failed: %s", path, describe(exc))


class _SideTaskFailures(logging.Handler):
    """Keeps why procrastinate stopped its worker: the failure of a side task (listener,
    heartbeat, periodic deferrer), which it logs with the action `side_task_failed`."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "action", None) != "side_task_failed":
            return
        task = getattr(record, "task_name", "a side task")
        cause = describe(record.exc_info[1]) if record.exc_info and record.exc_info[1] else ""
        self.reasons.append(f"its {task} task failed ({cause})" if cause else f"{task} failed")


class SupervisedWorker(procrastinate_worker.Worker):
    """procrastinate's worker, telling a stop it was asked for from one it chose."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("update_heartbeat_interval", settings.WORKER_HEARTBEAT_SECONDS)
        kwargs.setdefault("stalled_worker_timeout", settings.JOB_STALLED_SECONDS)
        super().__init__(install_signal_handlers=False, **kwargs)
        self.signalled = False
        self.stopping = asyncio.Event()
        self._schedule_changed = asyncio.Event()

    async def run(self) -> None:
        # procrastinate runs a sync job in the loop's default executor, whose size is
        # Python's: min(32, cores + 4), so 6 threads on 2 cores for 8 jobs at once. One
        # thread per job: `concurrency` is what really runs (asyncio.run shuts it down).
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(self.concurrency + SPARE_THREADS, thread_name_prefix="job")
        )
        await super().run()

    def _start_side_tasks(self) -> list[asyncio.Task[Any]]:
        tasks = super()._start_side_tasks()
        tasks.append(asyncio.create_task(self._recover_forever(), name="recovery"))
        tasks.append(asyncio.create_task(self._wake_for_scheduled_jobs(), name="scheduled"))
        return tasks

    async def _handle_notification(self, *, channel: str, notification: Any) -> None:
        await super()._handle_notification(channel=channel, notification=notification)
        if notification.get("type") == "job_inserted":
            self._schedule_changed.set()  # it may be due sooner than the one awaited

    async def _next_scheduled_in(self) -> float | None:
        """Seconds until the earliest job of this worker's queues scheduled later."""
        row = await self.app.job_manager.connector.execute_query_one_async(
            NEXT_SCHEDULED_SQL, queues=list(self.queues) if self.queues else None
        )
        wait = row["wait"]
        return None if wait is None else max(0.0, float(wait))

    async def _wake_for_scheduled_jobs(self) -> None:
        """Fetch a scheduled job when it falls due, not at procrastinate's next poll.

        procrastinate hears of new jobs (LISTEN/NOTIFY) but finds a job scheduled for
        later (a push retry in 1 s, the end of FCM's Retry-After) only when it polls,
        every 5 s: a retry due in one second waited up to six. This side task sleeps
        until the earliest scheduled job of the worker's queues is due (looked up
        again whenever a job is inserted) and then wakes the fetch loop. A failed
        lookup is logged; the poll still finds the job.
        """
        poll = float(self.fetch_job_polling_interval)
        while True:
            self._schedule_changed.clear()
            try:
                wait = await self._next_scheduled_in()
            except Exception as exc:
                logger.warning("worker: next scheduled job not looked up (%s)", describe(exc))
                wait = None
            timeout = poll if wait is None else min(poll, wait + SCHEDULE_MARGIN_SECONDS)
            try:
                await asyncio.wait_for(self._schedule_changed.wait(), timeout)
            except TimeoutError:
                if wait is not None and wait + SCHEDULE_MARGIN_SECONDS <= poll:
                    self._new_job_event.set()
                continue
            # A job was inserted: look again, once the burst of a fan-out has passed.
            await asyncio.sleep(SCHEDULE_COALESCE_SECONDS)

    async def _recover_forever(self) -> None:
        """Retry dead workers' jobs and requeue lost rows (backend.recovery).

        A failed round is logged and tried again: losing the database stops the
        worker through procrastinate's own side tasks, not through this one."""
        from backend.recovery import recover

        while True:
            await asyncio.sleep(settings.JOB_RECOVERY_SECONDS)
            try:
                await recover(self.app.job_manager)
            except Exception as exc:
                logger.warning("worker: recovery round failed (%s)", describe(exc))

    def stop(self) -> None:
        super().stop()
        self.stopping.set()

    def on_signal(self) -> None:
        self.signalled = True
        self.stop()


def _exit_now(reason: str) -> None:
    # A job thread blocked on a dead connection would keep the interpreter from
    # exiting: past the deadline, leave the way a crash would (status 1).
    logger.error("worker: did not stop in time (%s); exiting now with status 1", reason)
    logging.shutdown()
    os._exit(EXIT_FAILURE)


async def supervise(options: dict[str, Any]) -> int:
    """Run the worker until it stops; the exit status for the supervisor."""
    failures = _SideTaskFailures()
    logging.getLogger("procrastinate").addHandler(failures)
    try:
        async with django_app.open_async() as app:
            return await _run(app, options, failures)
    except Exception as exc:  # the database unreachable at start, or on closing
        logger.error("worker: cannot run (%s); exiting with status 1", describe(exc))
        return EXIT_FAILURE
    finally:
        logging.getLogger("procrastinate").removeHandler(failures)


async def _run(app: Any, options: dict[str, Any], failures: _SideTaskFailures) -> int:
    loop = asyncio.get_running_loop()
    worker = SupervisedWorker(app=app, **{**app.worker_defaults, **options})
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _once(loop, signum, worker.on_signal))
    run = asyncio.create_task(worker.run(), name="worker")
    stopping = asyncio.create_task(worker.stopping.wait())
    await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if worker.signalled:
        await run  # a graceful stop: the supervisor's own stop timeout bounds it
        return 0
    if run.done() and run.exception() is not None:
        reason = describe(run.exception())  # type: ignore[arg-type]
    else:
        reason = "; ".join(failures.reasons) or "it stopped without being asked to"
    logger.error(
        "worker: stopping because %s (usually the database connection was lost); "
        "exiting with status 1 for the supervisor to restart it",
        reason,
    )
    # procrastinate waits for the database to unregister the worker: bound the wait.
    deadline = threading.Timer(settings.WORKER_EXIT_TIMEOUT_SECONDS, _exit_now, [reason])
    deadline.daemon = True
    deadline.start()
    await asyncio.wait({run})
    if not run.cancelled():
        run.exception()  # already described above, or an aftermath of it
    return EXIT_FAILURE


def _once(loop: asyncio.AbstractEventLoop, signum: signal.Signals, callback: Any) -> Any:
    """A handler that, after the first signal, lets a second one act as by default."""

    def handler() -> None:
        loop.remove_signal_handler(signum)
        callback()

    return handler


class Command(BaseCommand):
    help = (
        "Run the job worker; exit with status 1 when it loses its database "
        "(for the supervisor to restart it), 0 when asked to stop."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=settings.WORKER_CONCURRENCY,
            help="Jobs run at once (default: WORKER_CONCURRENCY).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connector = django_app.connector
        if not isinstance(connector, django_connector.DjangoConnector):
            raise CommandError("the job queue is not configured for Django")
        keep_a_connection_per_job(options["concurrency"])
        warm_up()
        freeze_startup_objects()  # after the warm-up: what it built is kept for good
        with django_app.replace_connector(connector.get_worker_connector()):
            status = asyncio.run(supervise({"concurrency": options["concurrency"]}))
        if status:
            sys.exit(status)
