"""Migration 0004 moves agency replays into IdempotencyRecord and drops the old table."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.conftest import make_user
from tests.dossiers.conftest import AgencyClient
from tests.factories import make_dossier, make_procedure

BEFORE = [("dossiers", "0003_procedure_version")]
AFTER = [("dossiers", "0004_agency_replays_in_idempotency_records")]


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _back_to_the_latest_migrations():
    """Later migrations of the app are rolled back with 0004: re-apply all of them
    afterwards, or the tests that follow run on an old schema."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_stored_answers_move_over_and_still_replay(settings, agency, agency_client: AgencyClient):
    settings.AGENCY_REQUEST_RETENTION_DAYS = 30
    dossier = make_dossier(make_user(password=None), make_procedure(agency), status=2)
    path = f"/api/v1/agency/dossiers/{dossier.code}/accept"
    # What backend.idempotency.request_fingerprint makes of this client's request.
    fingerprint = hashlib.sha256(f"POST\n{path}\n{{}}".encode()).hexdigest()
    old_apps = migrate(BEFORE)
    try:
        agency_request = old_apps.get_model("dossiers", "AgencyRequest")
        stored = agency_request.objects.create(
            agency_id=agency.pk,
            event_id="evt-before",
            fingerprint=fingerprint,
            response_status=200,
            response_body=b'{"answer": "first"}',
            response_content_type="application/json",
        )
        # An answer older than the retention moves over already expired.
        agency_request.objects.create(
            agency_id=agency.pk,
            event_id="evt-ancient",
            fingerprint="f" * 64,
            response_status=409,
            response_body=b"{}",
            response_content_type="application/json",
        )
        ancient = timezone.now() - dt.timedelta(days=31)
        agency_request.objects.filter(event_id="evt-ancient").update(created_at=ancient)
    finally:
        new_apps = migrate(AFTER)
        # Later migrations (the event log's move) back on, as every other test expects.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    with connection.cursor() as cursor:
        assert "dossiers_agencyrequest" not in connection.introspection.table_names(cursor)
    record_model = new_apps.get_model("backend", "IdempotencyRecord")
    records = {r.key: r for r in record_model.objects.filter(scope=f"agency:{agency.pk}")}
    assert set(records) == {"evt-before", "evt-ancient"}
    moved = records["evt-before"]
    assert (moved.state, moved.response_status, bytes(moved.response_body)) == (
        "completed",
        200,
        b'{"answer": "first"}',
    )
    assert moved.expires_at == stored.created_at + dt.timedelta(days=30)
    assert records["evt-ancient"].expires_at < timezone.now()
    # The moved record answers a retry of the same request, marked as a replay.
    replay = agency_client.post(path, {}, event_id="evt-before")
    assert replay.headers["X-Event-Replayed"] == "true"
    assert replay.json() == {"answer": "first"}
    dossier.refresh_from_db()
    assert dossier.status == 2  # nothing ran
