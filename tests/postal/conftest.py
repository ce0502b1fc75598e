"""Fixtures of the postal tests: the fake carrier, a citizen with a dossier, signing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from auth.models import User
from dossiers.models import Dossier
from fakes.carrier import API_KEY, FakeCarrier
from postal.models import SavedAddress
from postal.webhooks import sign
from tests.conftest import ApiClient, ApiResponse, make_user, run_jobs_until_idle, sign_in
from tests.factories import make_dossier, make_procedure

WEBHOOK_SECRET = "test-webhook-secret"
HANOI_COMMUNE = "00070"  # Phường Hoàn Kiếm, Hà Nội (01): same province as the agency
BAC_NINH_COMMUNE = "07210"  # Phường Bắc Giang, Bắc Ninh (24): neighbouring
CA_MAU_COMMUNE = "31825"  # Phường Bạc Liêu, Cà Mau (96): far


@pytest.fixture
def fake_carrier(settings: Any) -> Iterator[FakeCarrier]:
    carrier = FakeCarrier().start()
    settings.POSTAL_VNPOST_BASE_URL = carrier.url
    settings.POSTAL_VNPOST_API_KEY = API_KEY
    settings.POSTAL_VNPOST_TIMEOUT_SECONDS = 0.5
    settings.POSTAL_VNPOST_HTTP_RETRIES = 0
    settings.POSTAL_VNPOST_HTTP_RETRY_BACKOFF_MS = 0
    carrier.hang_seconds = 1.5
    yield carrier
    carrier.stop()


@pytest.fixture(autouse=True)
def _webhook_secret(settings: Any) -> None:
    settings.POSTAL_WEBHOOK_SECRETS = {"vnpost": WEBHOOK_SECRET}


def make_address(user: User, commune_code: str = HANOI_COMMUNE, **extra: Any) -> SavedAddress:
    from postal.divisions import get_commune

    commune = get_commune(commune_code)
    assert commune is not None
    fields: dict[str, Any] = {
        "recipient_name": "Lê Thị Hoa",
        "phone": "+84912345678",
        "street": "Số 12 phố Huế",
        "commune_code": commune.code,
        "province_code": commune.province_code,
    }
    fields.update(extra)
    return SavedAddress.objects.create(user=user, **fields)


class Citizen:
    def __init__(self, **dossier_extra: Any) -> None:
        self.user = make_user()
        self.api = ApiClient(token=sign_in(self.user)[1].access_token)
        procedure_fields = dossier_extra.pop("procedure", {})
        self.procedure = make_procedure(**procedure_fields)
        dossier_extra.setdefault("status", Dossier.Status.ACCEPTED)
        self.dossier = make_dossier(self.user, self.procedure, **dossier_extra)
        self.address = make_address(self.user)

    def book(self, direction: str = "result", **kwargs: Any) -> ApiResponse:
        return self.api.post(
            f"/api/v1/postal/dossiers/{self.dossier.id}/bookings",
            {"direction": direction, "address_id": str(self.address.id)},
            **kwargs,
        )


@pytest.fixture
def citizen(db: None) -> Citizen:
    return Citizen()


def post_webhook(
    body: dict[str, Any] | bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
    carrier: str = "vnpost",
    language: str | None = None,
) -> ApiResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    headers = {
        "X-Carrier-Timestamp": ts,
        "X-Carrier-Signature": signature if signature is not None else sign(secret, ts, raw),
    }
    return ApiClient(language=language).post(
        f"/api/v1/postal/carriers/{carrier}/webhook", raw=raw, headers=headers
    )


def run_postal_jobs() -> None:
    """Run every due postal job once (the worker stops when the queue is idle)."""
    run_jobs_until_idle(["postal"])


@pytest.fixture(autouse=True)
def _empty_postal_queue(request: pytest.FixtureRequest) -> None:
    """The job table is not a model, so flushes leave it: start each test empty."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE queue_name = 'postal'")


def postal_jobs(task_name: str | None = None) -> list[tuple[str, str, dict[str, Any], int]]:
    """(task, status, args, attempts) of this app's carrier jobs, oldest first.

    The event subscriber's jobs are left out unless asked for by name.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT task_name, status, args, attempts FROM procrastinate_jobs "
            "WHERE queue_name = 'postal' AND (%s::text IS NULL AND task_name <> "
            "'postal.on_dossier_event' OR task_name = %s) ORDER BY id",
            [task_name, task_name],
        )
        return [
            (row[0], row[1], row[2] if isinstance(row[2], dict) else json.loads(row[2]), row[3])
            for row in cursor.fetchall()
        ]


def make_retries_due() -> None:
    """Skip the backoff wait of retried jobs (the retry itself is procrastinate's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() "
            "WHERE queue_name = 'postal' AND status = 'todo'"
        )
