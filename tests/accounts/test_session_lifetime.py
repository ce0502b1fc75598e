"""A session's absolute lifetime (OWASP ASVS 3.3.2): SESSION_MAX_AGE_DAYS from its
sign-in, however often it refreshes. Past it nothing of the session works (refresh,
access tokens, a retried exchange), with 401 `session_expired`; it is no revocation,
so the device stays known and the password alone signs it in again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from auth.models import DeviceSession, RefreshToken
from auth.tokens import session_ends_at
from tests.accounts.conftest import PASSWORD, all_sms, device
from tests.backend.test_settings import run_manage
from tests.conftest import ApiClient, make_user, sign_in
from tests.dossiers.conftest import frozen

pytestmark = pytest.mark.django_db

REFRESH = "/api/v1/auth/token/refresh"
ME = "/api/v1/auth/me"
MAX_AGE_DAYS = 7  # shorter than REFRESH_TOKEN_TTL_DAYS: the session's age decides
# Moments around the session's end, and what the session is then.
BOUNDARY = [
    pytest.param(-dt.timedelta(microseconds=1), True, id="just_before"),
    pytest.param(dt.timedelta(0), False, id="at"),
    pytest.param(dt.timedelta(seconds=1), False, id="after"),
]


@pytest.fixture(autouse=True)
def _max_age(settings: Any) -> None:
    settings.SESSION_MAX_AGE_DAYS = MAX_AGE_DAYS


def _refresh(token: str) -> Any:
    return ApiClient().post(REFRESH, {"refresh_token": token})


def _assert_session_expired(response: Any) -> None:
    assert response.status_code == 401, response
    assert response.json()["code"] == "session_expired"
    assert response.json()["message"] == (
        "Phiên đăng nhập đã hết thời hạn. Hãy đăng nhập lại bằng mật khẩu."
    )


def _assert_not_revoked(session: DeviceSession) -> None:
    session.refresh_from_db()
    assert (session.revoked_at, session.revoked_reason) == (None, "")


@pytest.mark.parametrize(("offset", "alive"), BOUNDARY)
def test_a_refresh_works_until_the_sessions_max_age(offset: dt.timedelta, alive: bool) -> None:
    session, tokens = sign_in(make_user())
    with frozen(session_ends_at(session) + offset):
        response = _refresh(tokens.refresh_token)
    if alive:
        assert response.status_code == 200, response
        # Its access token works only to the session's end, and says so.
        assert response.json()["expires_in"] == 1
    else:
        _assert_session_expired(response)
        assert RefreshToken.objects.filter(session=session).count() == 1
    _assert_not_revoked(session)


@pytest.mark.parametrize(("offset", "alive"), BOUNDARY)
def test_an_access_token_works_until_the_sessions_max_age(
    offset: dt.timedelta, alive: bool
) -> None:
    session, tokens = sign_in(make_user())
    with frozen(session_ends_at(session) + offset):
        response = ApiClient(tokens.access_token).get(ME)
    if alive:
        assert response.status_code == 200, response
    else:
        _assert_session_expired(response)
    _assert_not_revoked(session)


def test_a_pair_issued_near_the_end_lives_only_to_the_end() -> None:
    session, tokens = sign_in(make_user())
    end = session_ends_at(session)
    with frozen(end - dt.timedelta(minutes=5)):
        pair = _refresh(tokens.refresh_token).json()
    assert pair["expires_in"] == 300
    with frozen(end - dt.timedelta(seconds=1)):
        assert ApiClient(pair["access_token"]).get(ME).status_code == 200
    with frozen(end):
        _assert_session_expired(ApiClient(pair["access_token"]).get(ME))
        _assert_session_expired(_refresh(pair["refresh_token"]))


def test_refreshing_often_does_not_extend_the_session() -> None:
    session, tokens = sign_in(make_user())
    refresh_token = tokens.refresh_token
    end = session_ends_at(session)
    for day in range(1, MAX_AGE_DAYS):
        with frozen(session.created_at + dt.timedelta(days=day)):
            response = _refresh(refresh_token)
            assert response.status_code == 200, (day, response)
            refresh_token = response.json()["refresh_token"]
    with frozen(end):
        _assert_session_expired(_refresh(refresh_token))


def test_a_retried_exchange_past_the_max_age_gets_no_pair(settings: Any) -> None:
    settings.REFRESH_TOKEN_RETRY_SECONDS = 30
    session, tokens = sign_in(make_user())
    end = session_ends_at(session)
    with frozen(end - dt.timedelta(seconds=10)):
        first = _refresh(tokens.refresh_token)
        assert first.status_code == 200
        # Within the window and the session's life, the retry gets the same pair.
        assert _refresh(tokens.refresh_token).json() == first.json()
    with frozen(end + dt.timedelta(seconds=10)):
        retry = _refresh(tokens.refresh_token)
    _assert_session_expired(retry)
    # The owner's retry, not a reuse: the session was not ended for it.
    _assert_not_revoked(session)


def test_past_the_max_age_the_password_alone_signs_the_same_device_in_again() -> None:
    user = make_user("+84912345678")
    session, tokens = sign_in(user, device_id="phone-1")
    later = session_ends_at(session) + dt.timedelta(hours=1)
    with frozen(later):
        _assert_session_expired(_refresh(tokens.refresh_token))
        login = ApiClient().post(
            "/api/v1/auth/login",
            {
                "phone": "0912345678",
                "password": PASSWORD,
                **device("phone-1", device_key=tokens.device_key),
            },
        )
    assert login.status_code == 200, login
    assert login.json()["second_factor_required"] is False
    assert all_sms() == []
    assert ApiClient(login.json()["access_token"]).get(ME).status_code == 200


@pytest.mark.parametrize(("value", "starts"), [("0", False), ("-1", False), ("1", True)])
def test_a_max_age_below_one_day_is_refused_at_start_up(value: str, starts: bool) -> None:
    result = run_manage("check", SESSION_MAX_AGE_DAYS=value)
    assert (result.returncode == 0) is starts, result.stderr
    if not starts:
        assert "SESSION_MAX_AGE_DAYS must be at least 1" in result.stderr
