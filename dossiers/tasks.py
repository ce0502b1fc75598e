"""Periodic jobs of the dossier lifecycle: deadline monitoring and housekeeping."""

from __future__ import annotations

from procrastinate.contrib.django import app

from dossiers.agency_auth import purge_old_requests
from dossiers.monitoring import scan_deadlines


@app.periodic(cron="*/10 * * * *")
@app.task(queue="monitoring", name="dossiers.scan_deadlines", lock="dossiers.scan_deadlines")
def scan_deadlines_job(timestamp: int) -> dict[str, int]:
    return scan_deadlines()


@app.periodic(cron="41 3 * * *")
@app.task(queue="maintenance", name="dossiers.purge_agency_requests")
def purge_agency_requests(timestamp: int) -> int:
    return purge_old_requests()
