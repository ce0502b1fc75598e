"""Device sessions through the API: refresh, reuse, logout, list, revoke."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core import signing
from django.db.models import F

from auth.models import DeviceSession, RefreshToken
from backend.realtime import session_group
from tests.conftest import ApiClient, make_user, sign_in


def _refresh(token: str):
    return ApiClient().post("/api/v1/auth/token/refresh", {"refresh_token": token})


def test_refresh_rotates_the_pair(user) -> None:
    _, tokens = sign_in(user)
    response = _refresh(tokens.refresh_token)
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] != tokens.refresh_token
    assert body["session_id"] == str(tokens.session_id)
    assert ApiClient(body["access_token"]).get("/api/v1/auth/me").status_code == 200
    assert _refresh(body["refresh_token"]).status_code == 200


def test_refresh_in_the_same_second_gives_a_distinct_access_token(user, monkeypatch) -> None:
    one_second = signing.TimestampSigner().timestamp()
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: one_second)
    _, tokens = sign_in(user)
    first = _refresh(tokens.refresh_token).json()
    second = _refresh(first["refresh_token"]).json()
    assert len({tokens.access_token, first["access_token"], second["access_token"]}) == 3


def test_the_previous_access_token_works_after_a_refresh_until_the_session_ends(user) -> None:
    """The contract (accounts.md): a refresh does not revoke the previous access token
    (it lives out its lifetime); ending the session ends it at once."""
    _, tokens = sign_in(user)
    rotated = _refresh(tokens.refresh_token).json()
    assert ApiClient(tokens.access_token).get("/api/v1/auth/me").status_code == 200
    assert ApiClient(rotated["access_token"]).post("/api/v1/auth/logout").status_code == 204
    assert ApiClient(tokens.access_token).get("/api/v1/auth/me").status_code == 401


def test_reusing_a_rotated_refresh_token_revokes_the_whole_session(user) -> None:
    session, tokens = sign_in(user)
    rotated = _refresh(tokens.refresh_token).json()
    # Past the retry window (tests/accounts/test_refresh_retry.py has the window).
    RefreshToken.objects.filter(used_at__isnull=False).update(
        used_at=F("used_at") - dt.timedelta(seconds=settings.REFRESH_TOKEN_RETRY_SECONDS + 1)
    )
    reused = _refresh(tokens.refresh_token)
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    session.refresh_from_db()
    assert session.revoked_reason == "refresh_reuse"
    # The thief and the owner are both out: the newest tokens stop working too.
    assert _refresh(rotated["refresh_token"]).json()["code"] == "invalid_refresh_token"
    assert ApiClient(rotated["access_token"]).get("/api/v1/auth/me").status_code == 401


def test_unknown_refresh_token_is_401(db) -> None:
    response = _refresh("nope")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


def test_logout_ends_this_session_only(user) -> None:
    _, here = sign_in(user)
    _, there = sign_in(user)
    assert ApiClient(here.access_token).post("/api/v1/auth/logout").status_code == 204
    assert ApiClient(here.access_token).get("/api/v1/auth/me").status_code == 401
    assert _refresh(here.refresh_token).status_code == 401
    assert ApiClient(there.access_token).get("/api/v1/auth/me").status_code == 200


def test_a_deactivated_account_tokens_stop_working(user) -> None:
    _, tokens = sign_in(user)
    client = ApiClient(tokens.access_token)
    assert client.get("/api/v1/auth/me").status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert client.get("/api/v1/auth/me").status_code == 401


def test_logout_everywhere_ends_every_session(user) -> None:
    _, here = sign_in(user)
    _, there = sign_in(user)
    other_user_session = sign_in(make_user())[1]
    assert ApiClient(here.access_token).post("/api/v1/auth/logout-all").status_code == 204
    assert ApiClient(here.access_token).get("/api/v1/auth/me").status_code == 401
    assert ApiClient(there.access_token).get("/api/v1/auth/me").status_code == 401
    assert ApiClient(other_user_session.access_token).get("/api/v1/auth/me").status_code == 200


def test_sessions_list_shows_devices_and_flags_the_current_one(user) -> None:
    here, here_tokens = sign_in(
        user, name="iPhone của Hoa", platform="ios", app_version="2.0.1", ip="203.0.113.5"
    )
    there, _ = sign_in(user, name="Galaxy", platform="android", app_version="1.9.0")
    sign_in(make_user())  # someone else's session never shows
    response = ApiClient(here_tokens.access_token).get("/api/v1/auth/sessions")
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["items"]}
    assert set(items) == {str(here.id), str(there.id)}
    mine = items[str(here.id)]
    assert mine["current"] is True
    assert (mine["name"], mine["platform"], mine["app_version"], mine["ip"]) == (
        "iPhone của Hoa",
        "ios",
        "2.0.1",
        "203.0.113.5",
    )
    assert mine["last_seen_at"]
    assert items[str(there.id)]["current"] is False


def test_a_session_past_its_max_age_is_not_listed_nor_found(user, settings) -> None:
    # Its tokens no longer work (SESSION_MAX_AGE_DAYS): nothing is signed in there.
    settings.SESSION_MAX_AGE_DAYS = 30
    _, here = sign_in(user)
    kept, _ = sign_in(user, name="Galaxy")
    old, _ = sign_in(user, name="Old phone")
    now = dt.datetime.now(dt.UTC)
    DeviceSession.objects.filter(pk=kept.pk).update(created_at=now - dt.timedelta(days=29.99))
    DeviceSession.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=30.01))
    api = ApiClient(here.access_token)

    listed = {item["name"] for item in api.get("/api/v1/auth/sessions").json()["items"]}
    gone = api.delete(f"/api/v1/auth/sessions/{old.id}")

    assert "Galaxy" in listed
    assert "Old phone" not in listed
    assert gone.status_code == 404
    old.refresh_from_db()
    assert (old.revoked_at, old.revoked_reason) == (None, "")


def test_revoking_a_session_takes_effect_on_the_next_request(user) -> None:
    _, here = sign_in(user)
    there, there_tokens = sign_in(user)
    victim = ApiClient(there_tokens.access_token)
    assert victim.get("/api/v1/auth/me").status_code == 200
    response = ApiClient(here.access_token).delete(f"/api/v1/auth/sessions/{there.id}")
    assert response.status_code == 204
    assert victim.get("/api/v1/auth/me").status_code == 401
    assert _refresh(there_tokens.refresh_token).status_code == 401


def test_revoking_someone_elses_session_is_404_and_changes_nothing(user, user_api) -> None:
    other, other_tokens = sign_in(make_user())
    response = user_api.delete(f"/api/v1/auth/sessions/{other.id}")
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None
    assert ApiClient(other_tokens.access_token).get("/api/v1/auth/me").status_code == 200


def test_a_device_revoked_by_the_user_needs_the_second_step_again(api, user) -> None:
    session, _tokens = sign_in(user, device_id="lost-phone")
    _, mine = sign_in(user)
    ApiClient(mine.access_token).delete(f"/api/v1/auth/sessions/{session.id}")
    response = api.post(
        "/api/v1/auth/login",
        {"phone": user.phone, "password": "Str0ng-pass!word", "device_id": "lost-phone"},
    )
    assert response.json()["second_factor_required"] is True
    assert DeviceSession.objects.filter(device_id="lost-phone", revoked_at=None).count() == 0


def test_a_password_change_ends_the_other_sessions_and_closes_their_sockets(
    user, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    other, other_tokens = sign_in(user)
    _current, tokens = sign_in(user)
    told: list[list[str]] = []
    monkeypatch.setattr("backend.realtime.send_to_groups", lambda groups, msg: told.append(groups))
    with django_capture_on_commit_callbacks(execute=True):
        response = ApiClient(tokens.access_token).post(
            "/api/v1/auth/password/change",
            {"current_password": "Str0ng-pass!word", "new_password": "N3w-Str0ng-pass!"},
        )
    assert response.status_code == 204
    other.refresh_from_db()
    assert other.revoked_reason == "password_changed"
    # Its sockets are told at once, not at their next heartbeat.
    assert told == [[session_group(other.pk)]]
    assert ApiClient(other_tokens.access_token).get("/api/v1/auth/me").status_code == 401
    assert ApiClient(tokens.access_token).get("/api/v1/auth/me").status_code == 200
