"""`manage.py worker` runs as many sync jobs at once as its concurrency says.

procrastinate runs a sync job in its event loop's default executor, whose size is
Python's (min(32, cores + 4): 6 threads on a 2-core machine), so 8 jobs could not
run at once there; the supervised worker gives its loop a thread per job.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from django.db import transaction
from procrastinate.contrib.django import app

from backend.jobs import defer
from backend.management.commands.worker import SupervisedWorker
from tests.backend.test_jobs import record_run, runs

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = 8  # WORKER_CONCURRENCY's default, more than 2 cores + 4
MEETING = threading.Barrier(JOBS)


@app.task(queue="tests", name="tests.meet_every_other_job")
def meet_every_other_job(marker: str) -> None:
    """Returns once all JOBS jobs run at the same time (BrokenBarrierError if they cannot)."""
    MEETING.wait(timeout=60)
    record_run(marker)


def test_the_worker_runs_as_many_sync_jobs_at_once_as_its_concurrency() -> None:
    MEETING.reset()
    marker = uuid.uuid4().hex
    with transaction.atomic():
        for _ in range(JOBS):
            defer(meet_every_other_job, marker=marker)

    async def run_until_done() -> None:
        async with app.open_async() as opened:
            # wait=False: it stops fetching once the queue is empty, after its jobs end.
            worker = SupervisedWorker(app=opened, queues=["tests"], concurrency=JOBS, wait=False)
            await worker.run()

    with app.replace_connector(app.connector.get_worker_connector()):  # type: ignore[attr-defined]
        asyncio.run(run_until_done())

    assert runs(marker) == JOBS  # every job met the others: none broke the barrier
    assert not MEETING.broken
