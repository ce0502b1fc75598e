"""With PostgreSQL unreachable every kind of route answers 503 `database_unavailable`
with a Retry-After, never 500: citizen, agency (signed), carrier webhook (signed),
support staff and public routes. The database is really unreachable: the
connection's port is pointed at one where nothing listens."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from dossiers.agency.credentials import create_credential
from tests.accounts.staff import client_for as staff_client
from tests.accounts.staff import make_staff
from tests.conftest import ApiClient, ApiResponse, make_user, sign_in
from tests.dossiers.conftest import AgencyClient
from tests.factories import make_agency, make_dossier
from tests.postal.conftest import WEBHOOK_SECRET, post_webhook

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def database_unreachable() -> Iterator[None]:
    saved = connection.settings_dict["PORT"], dict(connection.settings_dict["OPTIONS"])
    connection.close()
    connection.settings_dict["PORT"] = "1"
    connection.settings_dict["OPTIONS"]["connect_timeout"] = 2
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"], connection.settings_dict["OPTIONS"] = saved


def assert_unavailable(response: ApiResponse) -> None:
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "database_unavailable"
    assert body["message"]
    assert int(response.headers["Retry-After"]) >= 1
    assert b"127.0.0.1" not in response.content  # nothing of the connection leaks


@pytest.fixture
def world(settings: Any) -> dict[str, Any]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.POSTAL_WEBHOOK_SECRETS = {"vnpost": WEBHOOK_SECRET}
    agency = make_agency("HN-OUTAGE")
    credential, secret = create_credential(agency, "outage system")
    citizen = make_user()
    dossier = make_dossier(citizen)
    return {
        "agency": AgencyClient(credential, secret),
        "citizen": ApiClient(token=sign_in(citizen)[1].access_token),
        "staff": staff_client(make_staff()),
        "dossier": dossier,
    }


def test_agency_routes_answer_503_when_the_database_is_unreachable(world) -> None:
    with database_unreachable():
        assert_unavailable(
            world["agency"].post(f"/api/v1/agency/dossiers/{world['dossier'].id}/accept", {})
        )
        assert_unavailable(world["agency"].get("/api/v1/agency/feed"))


def test_citizen_support_public_and_carrier_routes_answer_503(world) -> None:
    with database_unreachable():
        assert_unavailable(world["citizen"].get("/api/v1/auth/me"))
        assert_unavailable(world["citizen"].get(f"/api/v1/dossiers/{world['dossier'].id}"))
        assert_unavailable(world["staff"].get("/api/v1/support/my-audit"))
        assert_unavailable(ApiClient().get("/api/v1/catalogue/agencies"))
        assert_unavailable(
            post_webhook(
                {
                    "message_id": "m-outage-1",
                    "waybill": "EB000000001VN",
                    "status": "picked_up",
                    "occurred_at": "2026-01-01T00:00:00+07:00",
                }
            )
        )


def test_a_view_outside_the_api_gets_the_503_too() -> None:
    browser = Client(raise_request_exception=False)
    browser.force_login(make_staff())
    with database_unreachable():  # the session is read in a middleware: outside ninja
        response = browser.get("/admin/")
    assert_unavailable(response)  # type: ignore[arg-type]
