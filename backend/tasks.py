"""Periodic housekeeping jobs of the API conventions."""

from __future__ import annotations

from procrastinate.contrib.django import app

from backend.idempotency import purge_expired


@app.periodic(cron="17 * * * *")
@app.task(queue="maintenance", name="backend.purge_idempotency_keys")
def purge_idempotency_keys(timestamp: int) -> int:
    return purge_expired()
