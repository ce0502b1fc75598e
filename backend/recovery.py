"""Recovery of work a dead worker left behind, for every queue.

A worker that dies (SIGKILL, lost host, lost database) leaves its running jobs
`doing`. Each worker checks every JOB_RECOVERY_SECONDS (a side task of
`manage.py worker`, so no job row is written per check) and a periodic job checks
every minute as a backstop:
- a `doing` job whose worker sent no heartbeat for JOB_STALLED_SECONDS is retried,
  whatever its queue; every job is written to be run twice safely (claims, row
  states, idempotent actions), so a false alarm costs work, never a duplicate;
- then each function listed in settings.JOB_RECOVERERS runs (in a thread): an app
  finds its own rows that no job will look at again (e.g. push deliveries whose
  claim lapsed or whose job failed) and queues them again.
With the defaults (heartbeat 2 s, stalled after 8 s, checked every 2 s, push
claims leased for 8 s) work a crash interrupted runs again within about 12 s.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


async def retry_stalled_jobs(job_manager: Any) -> int:
    """Retry the `doing` jobs of workers that stopped sending heartbeats."""
    stalled = list(
        await job_manager.get_stalled_jobs(seconds_since_heartbeat=settings.JOB_STALLED_SECONDS)
    )
    retried = 0
    for job in stalled:
        try:
            await job_manager.retry_job(job)
        except Exception as exc:  # another worker's recovery took it first
            logger.info("stalled job %s not retried here: %s", job.id, type(exc).__name__)
            continue
        logger.warning("retrying job %s (%s) of a stopped worker", job.id, job.task_name)
        retried += 1
    return retried


def run_recoverers() -> int:
    """Each app's recovery of rows no job will look at again; how many were queued."""
    close_old_connections()
    total = 0
    try:
        for path in settings.JOB_RECOVERERS:
            total += int(import_string(path)())
    finally:
        close_old_connections()
    return total


async def recover(job_manager: Any) -> int:
    """Stalled jobs first (their retry may take their rows back), then lost rows."""
    retried = await retry_stalled_jobs(job_manager)
    return retried + await sync_to_async(run_recoverers, thread_sensitive=False)()
