"""Authenticator app: enrolment, drift window, replay, disabling."""

from __future__ import annotations

import base64
import datetime as dt
from types import SimpleNamespace

import pyotp
import pytest
from django.utils import timezone

from auth import totp
from auth.models import DeviceSession, RecoveryCode
from tests.accounts.conftest import wrong_code
from tests.conftest import ApiClient, sign_in


@pytest.fixture(autouse=True)
def _stopped_totp_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's TOTP clock stands still: a 30-second step that turned between a
    spent code and its replay would make the replay a fresh code."""
    frozen = timezone.now()
    monkeypatch.setattr("auth.totp.timezone", SimpleNamespace(now=lambda: frozen))


def _enrol(user_api) -> str:
    response = user_api.post("/api/v1/auth/totp/enrol")
    assert response.status_code == 200
    return response.json()["secret"]


def _enabled(user, user_api) -> str:
    secret = _enrol(user_api)
    assert (
        user_api.post("/api/v1/auth/totp/confirm", {"code": _code_at(secret, 0)}).status_code == 200
    )
    return secret


def _code_at(secret: str, offset_steps: int) -> str:
    return pyotp.TOTP(secret).generate_otp(totp.time_step() + offset_steps)


def test_enrol_returns_a_160_bit_secret_uri_and_qr_code_and_stores_it_encrypted(
    user, user_api
) -> None:
    body = user_api.post("/api/v1/auth/totp/enrol").json()
    assert len(base64.b32decode(body["secret"])) * 8 == 160
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert base64.b64decode(body["qr_png_base64"])[:8] == b"\x89PNG\r\n\x1a\n"
    user.refresh_from_db()
    assert body["secret"] not in user.totp_secret
    assert totp.decrypt_secret(user.totp_secret) == body["secret"]
    assert user.totp_confirmed_at is None  # not active before the first code


def test_confirm_turns_totp_on_and_returns_ten_recovery_codes(user, user_api) -> None:
    secret = _enrol(user_api)
    response = user_api.post("/api/v1/auth/totp/confirm", {"code": _code_at(secret, 0)})
    assert response.status_code == 200
    codes = response.json()["codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(len(base64.b32decode(code.replace("-", ""))) * 8 == 80 for code in codes)
    user.refresh_from_db()
    assert user.has_totp
    assert user_api.get("/api/v1/auth/me").json()["totp_enabled"] is True
    assert RecoveryCode.objects.filter(user=user, used_at=None).count() == 10


def test_confirm_with_a_wrong_code_keeps_totp_off(user, user_api) -> None:
    secret = _enrol(user_api)
    response = user_api.post("/api/v1/auth/totp/confirm", {"code": wrong_code(_code_at(secret, 0))})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_code"
    user.refresh_from_db()
    assert not user.has_totp


@pytest.mark.parametrize("other_digits", ["١٢٣٤٥٦", "１２３４５６", "²²²²²²"])
def test_a_code_in_other_scripts_digits_is_a_wrong_code(user, user_api, other_digits) -> None:
    _enrol(user_api)
    response = user_api.post("/api/v1/auth/totp/confirm", {"code": other_digits})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_code"
    user.refresh_from_db()
    assert not user.has_totp


def test_one_step_of_drift_either_way_is_accepted(user) -> None:
    secret = totp.new_secret()
    user.totp_secret = totp.encrypt_secret(secret)
    user.save()
    assert totp.accept_code(user, _code_at(secret, -1))
    assert totp.accept_code(user, _code_at(secret, +1))


def test_two_steps_of_drift_are_refused(user) -> None:
    secret = totp.new_secret()
    user.totp_secret = totp.encrypt_secret(secret)
    user.save()
    assert not totp.accept_code(user, _code_at(secret, -2))
    assert not totp.accept_code(user, _code_at(secret, +2))
    user.refresh_from_db()
    assert user.totp_last_step is None


def test_the_same_time_step_is_refused_twice(user) -> None:
    secret = totp.new_secret()
    user.totp_secret = totp.encrypt_secret(secret)
    user.save()
    code = _code_at(secret, 0)
    assert totp.accept_code(user, code)
    assert not totp.accept_code(user, code)
    # An older step is refused too once a newer one was used.
    assert not totp.accept_code(user, _code_at(secret, -1))
    user.refresh_from_db()
    assert user.totp_last_step == totp.time_step()


def test_disable_needs_a_fresh_code(user, user_api) -> None:
    secret = _enabled(user, user_api)
    replay = _code_at(secret, 0)  # spent by confirm
    refused = user_api.post("/api/v1/auth/totp/disable", {"code": replay})
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_code"
    ok = user_api.post("/api/v1/auth/totp/disable", {"code": _code_at(secret, 1)})
    assert ok.status_code == 204
    user.refresh_from_db()
    assert not user.has_totp
    assert user.totp_secret == ""
    assert RecoveryCode.objects.filter(user=user).count() == 0


def test_disable_with_a_recovery_code(user, user_api) -> None:
    _enrol_secret = _enrol(user_api)
    codes = user_api.post("/api/v1/auth/totp/confirm", {"code": _code_at(_enrol_secret, 0)}).json()[
        "codes"
    ]
    assert user_api.post("/api/v1/auth/totp/disable", {"code": codes[3]}).status_code == 204
    user.refresh_from_db()
    assert not user.has_totp


def test_disable_without_recent_authentication_is_reauth_required(user) -> None:
    session, tokens = sign_in(user)
    api = ApiClient(tokens.access_token)
    secret = _enabled(user, api)
    DeviceSession.objects.filter(pk=session.pk).update(
        authenticated_at=timezone.now() - dt.timedelta(hours=24, minutes=1)
    )
    response = api.post("/api/v1/auth/totp/disable", {"code": _code_at(secret, 1)})
    assert response.status_code == 401
    assert response.json()["code"] == "reauth_required"
    user.refresh_from_db()
    assert user.has_totp
    # Re-authenticating with the password allows it again.
    assert (
        api.post("/api/v1/auth/reauthenticate", {"password": "Str0ng-pass!word"}).status_code == 204
    )
    assert api.post("/api/v1/auth/totp/disable", {"code": _code_at(secret, 1)}).status_code == 204


def test_authentication_just_inside_24_hours_is_recent_enough(user) -> None:
    session, tokens = sign_in(user)
    DeviceSession.objects.filter(pk=session.pk).update(
        authenticated_at=timezone.now() - dt.timedelta(hours=23, minutes=59)
    )
    response = ApiClient(tokens.access_token).post("/api/v1/auth/totp/enrol")
    assert response.status_code == 200


def test_enrolling_twice_once_enabled_is_a_conflict(user, user_api) -> None:
    _enabled(user, user_api)
    response = user_api.post("/api/v1/auth/totp/enrol")
    assert response.status_code == 409
    assert response.json()["code"] == "totp_already_enabled"
