"""From the API alone: register, verify, second device with SMS, TOTP, third device."""

from __future__ import annotations

import pyotp

from auth import totp
from auth.models import DeviceSession, User
from tests.accounts.conftest import PASSWORD, device, last_code, sms_to
from tests.conftest import ApiClient

PHONE = "+84912345678"


def test_register_verify_second_device_enrol_totp_third_device(db, settings) -> None:
    settings.SMS_RESEND_SECONDS = 0
    phone_app = ApiClient()

    # 1. Register on the first phone and verify the texted code.
    started = phone_app.post(
        "/api/v1/auth/register",
        {"phone": "0912 345 678", "full_name": "Nguyễn Thị Lan", "password": PASSWORD},
        headers={"Idempotency-Key": "e2e-register-1"},
    )
    assert started.status_code == 202
    verified = phone_app.post(
        "/api/v1/auth/register/verify",
        {
            "challenge_id": started.json()["challenge_id"],
            "code": last_code(PHONE),
            **device("phone-1", device_name="Galaxy A54"),
        },
    )
    assert verified.status_code == 201
    first = ApiClient(verified.json()["access_token"])
    assert first.get("/api/v1/auth/me").json()["verification_level"] == 1

    # 2. Sign in on a tablet: new device, so an SMS code is the second step.
    tablet = ApiClient()
    login = tablet.post(
        "/api/v1/auth/login",
        {"phone": "+84912345678", "password": PASSWORD, **device("tablet-1", platform="ios")},
    ).json()
    assert login["second_factor_required"] is True
    assert login["methods"] == ["sms_otp"]
    tokens = tablet.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": login["challenge_id"], "method": "sms_otp", "code": last_code(PHONE)},
    )
    assert tokens.status_code == 200
    tablet.token = tokens.json()["access_token"]
    sessions = tablet.get("/api/v1/auth/sessions").json()["items"]
    assert sorted(item["name"] for item in sessions) == ["Galaxy A54", "Pixel 8"]

    # 3. Enrol an authenticator app from the tablet.
    enrolment = tablet.post("/api/v1/auth/totp/enrol").json()
    authenticator = pyotp.TOTP(enrolment["secret"])
    confirmed = tablet.post("/api/v1/auth/totp/confirm", {"code": authenticator.now()})
    assert confirmed.status_code == 200
    assert len(confirmed.json()["codes"]) == 10
    sms_before = len(sms_to(PHONE))

    # 4. Sign in on a laptop with the authenticator: no SMS is sent.
    laptop = ApiClient()
    login = laptop.post(
        "/api/v1/auth/login",
        {
            "phone": "0912345678",
            "password": PASSWORD,
            "second_factor": "totp",
            **device("laptop-1", platform="web"),
        },
    ).json()
    assert login["methods"] == ["sms_otp", "totp", "recovery_code"]
    user = User.objects.get(phone=PHONE)
    next_step_code = authenticator.generate_otp(totp.time_step() + 1)  # confirm spent "now"
    done = laptop.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": login["challenge_id"], "method": "totp", "code": next_step_code},
    )
    assert done.status_code == 200
    assert len(sms_to(PHONE)) == sms_before
    assert DeviceSession.objects.filter(user=user, revoked_at=None).count() == 3
    laptop.token = done.json()["access_token"]
    assert laptop.get("/api/v1/auth/me").json()["totp_enabled"] is True
