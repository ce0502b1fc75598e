"""The worker runs a scheduled job when it falls due, not at procrastinate's next poll."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import pytest
from django.db import connection, transaction
from django.utils import timezone
from procrastinate.contrib.django import app

from backend.jobs import defer
from backend.management.commands.worker import SupervisedWorker
from fakes.harness import wait_until
from tests.backend.test_jobs import record_run, runs

pytestmark = pytest.mark.django_db(transaction=True)

# procrastinate's own poll, made longer than any wait of the test: a job that runs
# within the test's deadline was fetched because the worker woke for it.
POLL_SECONDS = 120.0
DEADLINE_SECONDS = 30.0


def defer_in(seconds: float, marker: str) -> dt.datetime:
    moment = timezone.now() + dt.timedelta(seconds=seconds)
    with transaction.atomic():
        defer(record_run, schedule_at=moment, marker=marker)
    return moment


def run_worker_until(markers: list[str], during: object = None) -> float:
    """Run a worker on the `tests` queue until every marker's job ran; seconds taken."""

    async def run() -> float:
        async with app.open_async() as opened:
            worker = SupervisedWorker(
                app=opened, queues=["tests"], concurrency=2, fetch_job_polling_interval=POLL_SECONDS
            )
            task = asyncio.create_task(worker.run())
            started = time.monotonic()
            try:
                if callable(during):
                    await asyncio.to_thread(during)
                while time.monotonic() - started < DEADLINE_SECONDS:
                    counts = await asyncio.to_thread(lambda: [runs(m) for m in markers])
                    if all(counts):
                        return time.monotonic() - started
                    await asyncio.sleep(0.05)
                raise AssertionError(f"scheduled jobs not run within {DEADLINE_SECONDS} s")
            finally:
                worker.stop()
                await task

    with app.replace_connector(app.connector.get_worker_connector()):  # type: ignore[attr-defined]
        return asyncio.run(run())


def test_a_job_scheduled_before_the_worker_started_runs_when_due_not_at_the_poll() -> None:
    marker = uuid.uuid4().hex
    due = defer_in(1.0, marker)

    run_worker_until([marker])

    assert runs(marker) == 1
    assert timezone.now() >= due  # not early either


def test_a_job_scheduled_while_the_worker_waits_wakes_it_at_its_time() -> None:
    # The worker first waits for a job due much later, then hears of one due sooner.
    later, sooner = uuid.uuid4().hex, uuid.uuid4().hex
    defer_in(600.0, later)

    run_worker_until([sooner], during=lambda: defer_closing(1.0, sooner))

    assert runs(sooner) == 1
    assert runs(later) == 0
    with connection.cursor() as cursor:  # tidy: no other test may run it
        cursor.execute(
            "DELETE FROM procrastinate_jobs WHERE task_name = 'tests.record_run' "
            "AND args->>'marker' = %s",
            [later],
        )


def listening() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query ILIKE 'LISTEN %%'"
        )
        return int(cursor.fetchone()[0])


def defer_closing(seconds: float, marker: str) -> None:
    """Once the worker listens for new jobs (before, it could not hear of this one and
    only its first lookup or the poll would find it), defer a job due in `seconds`."""
    try:
        wait_until(listening, timeout=DEADLINE_SECONDS, what="the worker listening")
        defer_in(seconds, marker)
    finally:
        connection.close()  # this thread's connection: the test database is dropped later
