"""POST /api/v1/realtime/ticket: short-lived, single-use tickets bound to a session."""

from __future__ import annotations

import json

import pytest

from backend.redis import get_redis
from dossiers.models import Dossier
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_dossier
from tracking import tickets

URL = "/api/v1/realtime/ticket"


def _keys() -> list[bytes]:
    client = get_redis()
    assert client is not None
    return sorted(client.keys("*ws-ticket:*"))


def test_ticket_is_issued_bound_to_the_session_and_lives_at_most_60_seconds(user):
    session, tokens = sign_in(user)

    response = ApiClient(tokens.access_token).post(URL, {})

    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == 30
    assert body["url"] == f"ws://testserver/ws/v1/events?ticket={body['ticket']}"
    assert body["heartbeat_seconds"] == 25
    [key] = _keys()
    assert body["ticket"].encode() not in key  # only the hash is stored
    client = get_redis()
    assert 0 < client.ttl(key) <= 30
    stored = json.loads(client.get(key))
    assert (stored["user"], stored["session"], stored["dossier"]) == (
        str(user.pk),
        str(session.pk),
        None,
    )


def test_ticket_without_a_body_is_issued(user_api):
    assert user_api.post(URL).status_code == 201


def test_ticket_ttl_setting_is_capped_at_60_seconds(user_api, settings):
    settings.WS_TICKET_TTL_SECONDS = 600
    assert user_api.post(URL, {}).json()["expires_in"] == 60


def test_ticket_redeems_once(user_api):
    ticket = user_api.post(URL, {}).json()["ticket"]

    first = tickets.redeem_ticket(ticket)
    second = tickets.redeem_ticket(ticket)

    assert first is not None
    assert second is None
    assert _keys() == []


def test_ticket_is_refused_once_expired(user_api, monkeypatch):
    ticket = user_api.post(URL, {}).json()["ticket"]
    issued_at = tickets.now()
    monkeypatch.setattr(tickets, "now", lambda: issued_at + 30)

    assert tickets.redeem_ticket(ticket) is None


def test_ticket_can_be_narrowed_to_an_own_dossier(user):
    _, tokens = sign_in(user)
    dossier = make_dossier(user, status=Dossier.Status.NEW)

    body = ApiClient(tokens.access_token).post(URL, {"dossier_id": str(dossier.pk)}).json()

    grant = tickets.redeem_ticket(body["ticket"])
    assert grant is not None
    assert grant.dossier_id == dossier.pk


def test_ticket_for_someone_elses_dossier_is_404_and_nothing_is_stored(user_api):
    other = make_dossier(make_user(), status=Dossier.Status.NEW)

    response = user_api.post(URL, {"dossier_id": str(other.pk)})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert _keys() == []


def test_ticket_needs_a_signed_in_session(api):
    response = api.post(URL, {})
    assert response.status_code == 401
    assert _keys() == []


def test_ticket_issuing_is_rate_limited_per_user(user_api, settings, monkeypatch):
    settings.WS_TICKETS_PER_MINUTE = 3
    # The window is the clock's minute: a stopped clock keeps the four requests in one.
    frozen = tickets.now()
    monkeypatch.setattr(tickets, "now", lambda: frozen)
    statuses = [user_api.post(URL, {}).status_code for _ in range(4)]

    assert statuses == [201, 201, 201, 429]
    assert len(_keys()) == 3


@pytest.mark.django_db
def test_ticket_is_503_when_redis_is_down(user_api, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = user_api.post(URL, {})

    assert response.status_code == 503
    assert response.json()["code"] == "realtime_unavailable"
