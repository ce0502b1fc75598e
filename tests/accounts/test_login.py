"""Sign-in: password, second step on new devices, lockouts, neutral answers."""

from __future__ import annotations

import pyotp
from django.contrib.auth import base_user, hashers
from django.utils import timezone

from auth import totp
from auth.actions import sign_in as sign_in_actions
from auth.actions.second_factor import generate_recovery_codes
from auth.models import DeviceSession, OtpChallenge
from tests.accounts.conftest import PASSWORD, all_sms, device, last_code, sms_to, wrong_code
from tests.conftest import ApiClient, make_user, sign_in

PHONE = "+84912345678"


def _login(api, phone: str = "0912345678", password: str = PASSWORD, **extra):
    headers = extra.pop("headers", None)
    body = {"phone": phone, "password": password, **device(extra.pop("device_id", "dev-new"))}
    body.update(extra)
    return api.post("/api/v1/auth/login", body, headers=headers)


def _enable_totp(user) -> str:
    secret = totp.new_secret()
    user.totp_secret = totp.encrypt_secret(secret)
    user.totp_confirmed_at = timezone.now()
    user.save()
    return secret


def test_known_device_gets_tokens_directly(api, db) -> None:
    user = make_user(PHONE)
    _, earlier = sign_in(user, device_id="dev-known")
    response = _login(api, device_id="dev-known", device_key=earlier.device_key)
    assert response.status_code == 200
    body = response.json()
    assert body["second_factor_required"] is False
    assert body["access_token"]
    assert body["refresh_token"]
    assert body["device_key"] not in ("", None, earlier.device_key)
    assert all_sms() == []
    # The old session of that device is replaced by the new one.
    assert DeviceSession.objects.filter(user=user, revoked_at=None).count() == 1


def test_new_device_needs_a_second_step_by_sms(api, db) -> None:
    user = make_user(PHONE)
    response = _login(api, device_id="dev-new")
    assert response.status_code == 200
    body = response.json()
    assert body["second_factor_required"] is True
    assert body["methods"] == ["sms_otp"]
    assert body["access_token"] is None
    assert [m["purpose"] for m in sms_to(PHONE)] == ["otp.login"]
    assert not DeviceSession.objects.filter(user=user).exists()
    verified = api.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": body["challenge_id"], "method": "sms_otp", "code": last_code(PHONE)},
    )
    assert verified.status_code == 200
    session = DeviceSession.objects.get(user=user)
    assert session.device_id == "dev-new"
    assert session.name == "Pixel 8"


def test_new_device_with_totp_chosen_sends_no_sms(api, db) -> None:
    user = make_user(PHONE)
    secret = _enable_totp(user)
    response = _login(api, second_factor="totp")
    body = response.json()
    assert body["second_factor_required"] is True
    assert body["methods"] == ["sms_otp", "totp"]
    assert all_sms() == []
    verified = api.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": body["challenge_id"], "method": "totp", "code": pyotp.TOTP(secret).now()},
    )
    assert verified.status_code == 200
    assert DeviceSession.objects.filter(user=user, device_id="dev-new").count() == 1


def test_a_login_challenge_cannot_be_completed_twice(api, db) -> None:
    make_user(PHONE)
    body = _login(api).json()
    code = last_code(PHONE)
    payload = {"challenge_id": body["challenge_id"], "method": "sms_otp", "code": code}
    assert api.post("/api/v1/auth/login/verify", payload).status_code == 200
    again = api.post("/api/v1/auth/login/verify", payload)
    assert again.status_code == 422
    assert again.json()["code"] == "invalid_code"


def test_a_registration_code_never_completes_a_login(api, db, settings) -> None:
    settings.SMS_RESEND_SECONDS = 0
    make_user(PHONE)
    login = _login(api).json()
    reg = OtpChallenge.objects.create(
        purpose="register", phone=PHONE, user=None, expires_at=login_expiry(login)
    )
    response = api.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": str(reg.id), "method": "sms_otp", "code": last_code(PHONE)},
    )
    assert response.json()["code"] == "invalid_code"


def login_expiry(login: dict) -> object:
    return OtpChallenge.objects.get(pk=login["challenge_id"]).expires_at


def test_known_device_id_without_its_device_key_needs_the_second_step(api, db) -> None:
    """The device id is not secret: only the key given at the earlier sign-in vouches."""
    for phone, extra in (("+84912345678", {}), ("+84912345679", {"device_key": "guessed-key"})):
        user = make_user(phone)
        sign_in(user, device_id="dev-known")
        response = _login(api, phone, device_id="dev-known", **extra)
        assert response.status_code == 200
        body = response.json()
        assert body["second_factor_required"] is True
        assert body["access_token"] is None
        assert DeviceSession.objects.filter(user=user, revoked_at=None).count() == 1


def test_device_key_of_another_device_does_not_vouch(api, db) -> None:
    user = make_user(PHONE)
    _, phone_a = sign_in(user, device_id="dev-a")
    response = _login(api, device_id="dev-b", device_key=phone_a.device_key)
    assert response.json()["second_factor_required"] is True


def test_device_key_is_never_stored_in_clear(api, db) -> None:
    user = make_user(PHONE)
    _, tokens = sign_in(user, device_id="dev-known")
    _login(api, device_id="dev-other", device_key=tokens.device_key)
    session = DeviceSession.objects.get(user=user, device_id="dev-known")
    assert tokens.device_key not in session.device_key_hash
    assert len(session.device_key_hash) == 64
    assert OtpChallenge.objects.get().device.get("device_key") is None


def test_unknown_phone_and_wrong_password_get_the_same_answer(api, db, monkeypatch) -> None:
    make_user(PHONE)
    calls: list[str] = []
    real_check = hashers.check_password

    def spy(password, encoded, *args, **kwargs):
        calls.append(encoded[:3])
        return real_check(password, encoded, *args, **kwargs)

    monkeypatch.setattr(sign_in_actions, "check_password", spy)
    monkeypatch.setattr(base_user, "check_password", spy)
    wrong = _login(api, "0912345678", "Wrong-pass!word1")
    unknown = _login(api, "0987654321", "Wrong-pass!word1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "invalid_credentials"
    # The hasher ran for both: once on the real hash, once on the dummy one.
    assert len(calls) == 2
    assert all_sms() == []


def test_unverified_account_reads_as_unknown(api, db) -> None:
    make_user(PHONE, level=0)
    response = _login(api)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_five_wrong_passwords_lock_with_a_cool_off(api, db) -> None:
    make_user(PHONE)
    for _ in range(4):
        assert _login(api, password="Wrong-pass!word1").json()["code"] == "invalid_credentials"
    fifth = _login(api, password="Wrong-pass!word1")
    assert fifth.json()["code"] == "invalid_credentials"
    locked = _login(api, password=PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["code"] == "login_locked"
    assert locked.headers["Retry-After"] == "900"
    assert all_sms() == []


def test_unknown_numbers_lock_the_same_way(api, db) -> None:
    for _ in range(5):
        _login(api, "0987654321", "Wrong-pass!word1")
    response = _login(api, "0987654321", "Wrong-pass!word1")
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked"


def test_four_wrong_passwords_then_the_right_one_works_and_resets(api, db) -> None:
    _, tokens = sign_in(make_user(PHONE), device_id="d")
    key = tokens.device_key
    for _ in range(4):
        _login(api, password="Wrong-pass!word1", device_id="d", device_key=key)
    response = _login(api, device_id="d", device_key=key)
    assert response.status_code == 200
    key = response.json()["device_key"]
    for _ in range(4):
        _login(api, password="Wrong-pass!word1", device_id="d", device_key=key)
    assert _login(api, device_id="d", device_key=key).status_code == 200


def test_forged_x_forwarded_for_does_not_dodge_the_client_lock(api, db, settings) -> None:
    """Without a trusted proxy, the header is the client's own writing: one client."""
    settings.TRUSTED_PROXY_COUNT = 0
    make_user(PHONE)
    for index in range(5):
        _login(api, password="Wrong-pass!word1", headers={"X-Forwarded-For": f"10.0.0.{index}"})
    response = _login(api, headers={"X-Forwarded-For": "10.9.9.9"})
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked"


def test_forged_x_forwarded_for_does_not_dodge_the_ip_limit(api, db, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    settings.LOGIN_MAX_FAILURES_PER_IP_PER_HOUR = 3
    make_user(PHONE)
    for index in range(3):
        response = _login(
            api,
            f"091234567{index + 1}",
            "Wrong-pass!word1",
            headers={"X-Forwarded-For": f"10.0.0.{index}"},
        )
        assert response.json()["code"] == "invalid_credentials"
    blocked = _login(api, headers={"X-Forwarded-For": "10.0.0.99"})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "login_locked"


def test_an_ipv6_host_is_one_client_for_the_login_limits(api, db, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_MAX_FAILURES_PER_IP_PER_HOUR = 3
    make_user(PHONE)
    for index in range(3):
        response = _login(
            api,
            f"091234567{index + 1}",
            "Wrong-pass!word1",
            headers={"X-Forwarded-For": f"2001:db8:1:2::{index + 1}"},
        )
        assert response.json()["code"] == "invalid_credentials"
    blocked = _login(api, headers={"X-Forwarded-For": "2001:db8:1:2:ffff::99"})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "login_locked"
    elsewhere = _login(api, headers={"X-Forwarded-For": "2001:db8:1:3::1"})
    assert elsewhere.status_code == 200


def test_an_ipv6_host_is_one_client_for_the_per_number_limit(api, db, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_MAX_FAILURES = 2
    make_user(PHONE)
    for index in range(2):
        response = _login(
            api, password="Wrong-pass!word1", headers={"X-Forwarded-For": f"2001:db8:9::{index}"}
        )
        assert response.json()["code"] == "invalid_credentials"
    blocked = _login(api, headers={"X-Forwarded-For": "2001:db8:9::77"})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "login_locked"


def test_must_reset_password_blocks_login_until_reset(api, db) -> None:
    make_user(PHONE, must_reset_password=True)
    response = _login(api)
    assert response.status_code == 403
    assert response.json()["code"] == "password_reset_required"
    assert all_sms() == []
    reset = api.post("/api/v1/auth/password/reset", {"phone": "0912345678"}).json()
    done = api.post(
        "/api/v1/auth/password/reset/verify",
        {
            "challenge_id": reset["challenge_id"],
            "code": last_code(PHONE),
            "new_password": "N3w-pass!word",
        },
    )
    assert done.status_code == 204
    after = _login(api, password="N3w-pass!word")
    assert after.status_code == 200
    assert after.json()["second_factor_required"] is True


def test_recovery_code_completes_a_login_once(api, db) -> None:
    user = make_user(PHONE)
    _enable_totp(user)
    codes = generate_recovery_codes(user)
    first = _login(api, second_factor="recovery_code", device_id="a").json()
    assert first["methods"] == ["sms_otp", "totp", "recovery_code"]
    ok = api.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": first["challenge_id"], "method": "recovery_code", "code": codes[0]},
    )
    assert ok.status_code == 200
    second = _login(api, second_factor="recovery_code", device_id="b").json()
    reused = api.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": second["challenge_id"], "method": "recovery_code", "code": codes[0]},
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "invalid_code"
    lowercase = api.post(
        "/api/v1/auth/login/verify",
        {
            "challenge_id": second["challenge_id"],
            "method": "recovery_code",
            "code": codes[1].lower().replace("-", " "),
        },
    )
    assert lowercase.status_code == 200


def test_wrong_totp_codes_count_towards_the_account_lockout(api, db, settings) -> None:
    settings.OTP_MAX_FAILURES = 3
    user = make_user(PHONE)
    secret = _enable_totp(user)
    body = _login(api, second_factor="totp").json()
    right = pyotp.TOTP(secret).now()
    for _ in range(3):
        response = api.post(
            "/api/v1/auth/login/verify",
            {"challenge_id": body["challenge_id"], "method": "totp", "code": wrong_code(right)},
        )
        assert response.json()["code"] == "invalid_code"
    locked = api.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": body["challenge_id"], "method": "totp", "code": right},
    )
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_failed_codes"


def test_error_messages_follow_accept_language(db) -> None:
    body = {"phone": "0987654321", "password": "Wrong-pass!word1", **device()}
    vi = ApiClient(language="vi").post("/api/v1/auth/login", body)
    en = ApiClient(language="en").post("/api/v1/auth/login", body)
    assert vi.json()["message"] == "Số điện thoại hoặc mật khẩu không đúng."
    assert en.json()["message"] == "The phone number or the password is not correct."


def test_a_user_who_chose_totp_can_still_ask_for_the_sms(api, db) -> None:
    user = make_user(PHONE)
    _enable_totp(user)
    body = _login(api, second_factor="totp").json()
    assert all_sms() == []
    resent = api.post("/api/v1/auth/otp/resend", {"challenge_id": body["challenge_id"]})
    assert resent.status_code == 202
    assert [m["purpose"] for m in sms_to(PHONE)] == ["otp.login"]
    done = api.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": body["challenge_id"], "method": "sms_otp", "code": last_code(PHONE)},
    )
    assert done.status_code == 200
