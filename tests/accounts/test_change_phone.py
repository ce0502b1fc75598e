"""Changing the phone number: proof, recent sign-in, code to the new number, notice."""

from __future__ import annotations

import datetime as dt

import pyotp
from django.utils import timezone

from auth import totp
from auth.models import DeviceSession, User
from backend.realtime import session_group
from tests.accounts.conftest import PASSWORD, all_sms, last_code, sms_to
from tests.conftest import ApiClient, make_user, sign_in

OLD = "+84912345678"
NEW = "+84987654321"


def _start(api, **body):
    return api.post("/api/v1/auth/phone/change", {"new_phone": "0987654321", **body})


def test_change_phone_with_password_texts_the_new_number_then_notifies_the_old(db) -> None:
    user = make_user(OLD)
    api = ApiClient(sign_in(user)[1].access_token)
    started = _start(api, password=PASSWORD)
    assert started.status_code == 202
    assert [m["purpose"] for m in sms_to(NEW)] == ["otp.change_phone"]
    assert sms_to(OLD) == []
    done = api.post(
        "/api/v1/auth/phone/change/verify",
        {"challenge_id": started.json()["challenge_id"], "code": last_code(NEW)},
    )
    assert done.status_code == 200
    assert done.json()["phone"] == NEW
    user.refresh_from_db()
    assert user.phone == NEW
    notice = sms_to(OLD)
    assert [m["purpose"] for m in notice] == ["notice.phone_changed"]
    assert "4321" in notice[0]["text"]
    assert "•" not in notice[0]["text"]  # not GSM-7: the whole SMS would go as UCS-2


def test_change_phone_with_totp(db) -> None:
    user = make_user(OLD)
    secret = totp.new_secret()
    user.totp_secret = totp.encrypt_secret(secret)
    user.totp_confirmed_at = timezone.now()
    user.save()
    api = ApiClient(sign_in(user)[1].access_token)
    assert _start(api, totp_code=pyotp.TOTP(secret).now()).status_code == 202


def test_change_phone_with_a_wrong_password_sends_nothing(db) -> None:
    user = make_user(OLD)
    api = ApiClient(sign_in(user)[1].access_token)
    response = _start(api, password="Wrong-pass!word1")
    assert response.status_code == 422
    assert response.json()["details"][0]["code"] == "invalid_password"
    assert all_sms() == []


def test_change_phone_needs_recent_authentication(db) -> None:
    user = make_user(OLD)
    session, tokens = sign_in(user)
    DeviceSession.objects.filter(pk=session.pk).update(
        authenticated_at=timezone.now() - dt.timedelta(days=2)
    )
    response = _start(ApiClient(tokens.access_token), password=PASSWORD)
    assert response.status_code == 401
    assert response.json()["code"] == "reauth_required"
    assert all_sms() == []


def test_a_number_of_another_verified_account_gets_no_code_and_cannot_be_taken(db) -> None:
    user = make_user(OLD)
    make_user(NEW)
    api = ApiClient(sign_in(user)[1].access_token)
    started = _start(api, password=PASSWORD)
    assert started.status_code == 202  # same answer as for a free number
    assert all_sms() == []
    done = api.post(
        "/api/v1/auth/phone/change/verify",
        {"challenge_id": started.json()["challenge_id"], "code": "000000"},
    )
    assert done.json()["code"] == "invalid_code"
    user.refresh_from_db()
    assert user.phone == OLD


def test_a_change_phone_code_cannot_be_used_by_another_account(db) -> None:
    user = make_user(OLD)
    thief = make_user()
    started = _start(ApiClient(sign_in(user)[1].access_token), password=PASSWORD)
    response = ApiClient(sign_in(thief)[1].access_token).post(
        "/api/v1/auth/phone/change/verify",
        {"challenge_id": started.json()["challenge_id"], "code": last_code(NEW)},
    )
    assert response.json()["code"] == "invalid_code"
    assert User.objects.get(pk=thief.pk).phone != NEW


def test_a_phone_change_ends_every_other_session_and_their_devices_need_the_second_step(
    db, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    user = make_user(OLD)
    other, other_tokens = sign_in(user)
    _current, tokens = sign_in(user)
    api = ApiClient(tokens.access_token)
    started = _start(api, password=PASSWORD)
    told: list[list[str]] = []
    monkeypatch.setattr("backend.realtime.send_to_groups", lambda groups, msg: told.append(groups))
    with django_capture_on_commit_callbacks(execute=True):
        done = api.post(
            "/api/v1/auth/phone/change/verify",
            {"challenge_id": started.json()["challenge_id"], "code": last_code(NEW)},
        )
    assert done.status_code == 200
    # The other device is signed out at once, its sockets told; this one goes on.
    assert ApiClient(other_tokens.access_token).get("/api/v1/auth/me").status_code == 401
    assert api.get("/api/v1/auth/me").status_code == 200
    other.refresh_from_db()
    assert other.revoked_reason == "phone_changed"
    assert told == [[session_group(other.pk)]]
    refreshed = ApiClient().post(
        "/api/v1/auth/token/refresh", {"refresh_token": other_tokens.refresh_token}
    )
    assert refreshed.status_code == 401
    # Its device key no longer vouches for it: a sign-in there needs the code again.
    login = ApiClient().post(
        "/api/v1/auth/login",
        {
            "phone": NEW,
            "password": PASSWORD,
            "device_id": other.device_id,
            "device_key": other_tokens.device_key,
        },
    )
    assert login.status_code == 200
    assert login.json()["second_factor_required"] is True
