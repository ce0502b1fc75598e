"""Periodic housekeeping jobs of the API conventions."""

from __future__ import annotations

from procrastinate.contrib.django import app

from backend.idempotency import purge_expired
from backend.jobs import RETRY_ON_INFRASTRUCTURE


@app.periodic(cron="17 * * * *")
@app.task(
    queue="maintenance",
    name="backend.purge_idempotency_keys",
    retry=RETRY_ON_INFRASTRUCTURE,
)
def purge_idempotency_keys(timestamp: int) -> int:
    return purge_expired()
