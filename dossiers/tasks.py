"""Periodic jobs of the dossier lifecycle: deadline monitoring.

Agency replays (by X-Event-Id) are IdempotencyRecords: backend's purge job expires them.
"""

from __future__ import annotations

from procrastinate.contrib.django import app

from backend.jobs import RETRY_ON_INFRASTRUCTURE
from dossiers.monitoring import scan_deadlines


@app.periodic(cron="*/10 * * * *")
@app.task(
    queue="monitoring",
    name="dossiers.scan_deadlines",
    lock="dossiers.scan_deadlines",
    retry=RETRY_ON_INFRASTRUCTURE,
)
def scan_deadlines_job(timestamp: int) -> dict[str, int]:
    return scan_deadlines()
