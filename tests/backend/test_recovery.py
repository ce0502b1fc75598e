"""Work of a dead worker is retried whatever its queue (backend.recovery), and every
`manage.py worker` runs that recovery beside its jobs."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.db import connection, transaction
from procrastinate.contrib.django import app

from backend.jobs import defer
from backend.management.commands.worker import SupervisedWorker
from backend.recovery import recover
from tests.backend.test_jobs import record_run

pytestmark = pytest.mark.django_db(transaction=True)


def running_job_of_a_dead_worker(queue: str, marker: str, silent_for: int) -> int:
    """A job left `doing` by a worker whose last heartbeat is `silent_for` seconds old."""
    with transaction.atomic():
        defer(record_run, marker=marker)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) "
            "VALUES (now() - make_interval(secs => %s)) RETURNING id",
            [silent_for],
        )
        worker_id = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s, queue_name = %s "
            "WHERE task_name = 'tests.record_run' AND args->>'marker' = %s RETURNING id",
            [worker_id, queue, marker],
        )
        return int(cursor.fetchone()[0])


def status_of(job_id: int) -> tuple[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, attempts FROM procrastinate_jobs WHERE id = %s", [job_id])
        status, attempts = cursor.fetchone()
        return status, attempts


def status_closing(job_id: int) -> tuple[str, int]:
    try:
        return status_of(job_id)
    finally:
        connection.close()  # this thread's connection: the test database is dropped later


async def recover_once() -> int:
    async with app.open_async() as opened:
        return await recover(opened.job_manager)


def run_recovery() -> int:
    with app.replace_connector(app.connector.get_worker_connector()):  # type: ignore[attr-defined]
        return asyncio.run(recover_once())


@pytest.mark.parametrize("queue", ["postal", "monitoring", "maintenance", "sms", "notifications"])
def test_a_stalled_job_of_any_queue_is_retried(settings, queue) -> None:
    settings.JOB_STALLED_SECONDS = 8
    marker = uuid.uuid4().hex
    stalled = running_job_of_a_dead_worker(queue, marker, silent_for=9)
    alive = running_job_of_a_dead_worker(queue, marker + "-alive", silent_for=1)

    assert run_recovery() >= 1

    assert status_of(stalled) == ("todo", 1)
    assert status_of(alive) == ("doing", 0)  # its worker still beats: left alone
    with connection.cursor() as cursor:  # tidy: no other test may see a `doing` job
        cursor.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", [alive])


def test_the_supervised_worker_beats_and_recovers_at_the_configured_pace(settings) -> None:
    settings.WORKER_HEARTBEAT_SECONDS = 2
    settings.JOB_STALLED_SECONDS = 8
    worker = SupervisedWorker(app=app, queues=["tests"], wait=False)
    assert worker.update_heartbeat_interval == 2
    assert worker.stalled_worker_timeout == 8
    assert settings.JOB_STALLED_SECONDS + settings.JOB_RECOVERY_SECONDS <= 12


def test_the_worker_runs_recovery_as_a_side_task(settings) -> None:
    settings.JOB_RECOVERY_SECONDS = 0.05
    marker = uuid.uuid4().hex
    stalled = running_job_of_a_dead_worker("tests", marker, silent_for=60)

    async def run_until_recovered() -> None:
        async with app.open_async() as opened:
            worker = SupervisedWorker(app=opened, queues=["tests"], concurrency=1)
            run = asyncio.create_task(worker.run())
            for _ in range(200):  # the retried job runs in this very worker
                if (await asyncio.to_thread(status_closing, stalled))[0] == "succeeded":
                    break
                await asyncio.sleep(0.05)
            worker.stop()
            await run

    with app.replace_connector(app.connector.get_worker_connector()):  # type: ignore[attr-defined]
        asyncio.run(run_until_recovered())
    assert status_of(stalled) == ("succeeded", 2)  # retried once, then run
