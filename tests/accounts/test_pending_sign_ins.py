"""A sign-in in progress does not outlive the security event that ends the sessions.

Someone who knows the password (and receives the old number's texts: a stolen phone,
a swapped SIM) starts a sign-in on their device, or a password reset. The owner then
changes the password, resets it, moves the account to a new number, or support resets
the account, or signs out every device: the code texted before must no longer finish
what was started, nor may `/otp/resend` keep it alive.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from auth.models import DeviceSession, OtpChallenge, User
from tests.accounts.conftest import PASSWORD, last_code
from tests.accounts.staff import make_citizen, move_to_new_number
from tests.conftest import ApiClient, sign_in

pytestmark = pytest.mark.django_db

OLD = "+84912345678"
NEW = "+84987111222"
NEW_PASSWORD = "Fresh-Str0ng-pass"


def change_password(user: User) -> None:
    response = ApiClient(sign_in(user)[1].access_token).post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204, response.content


def reset_password(user: User) -> None:
    api = ApiClient()
    started = api.post("/api/v1/auth/password/reset", {"phone": OLD})
    done = api.post(
        "/api/v1/auth/password/reset/verify",
        {
            "challenge_id": started.json()["challenge_id"],
            "code": last_code(OLD),
            "new_password": NEW_PASSWORD,
        },
    )
    assert done.status_code == 204, done.content


def change_phone(user: User) -> None:
    api = ApiClient(sign_in(user)[1].access_token)
    started = api.post(
        "/api/v1/auth/phone/change", {"new_phone": "0987111222", "password": PASSWORD}
    )
    done = api.post(
        "/api/v1/auth/phone/change/verify",
        {"challenge_id": started.json()["challenge_id"], "code": last_code(NEW)},
    )
    assert done.status_code == 200, done.content


def log_out_everywhere(user: User) -> None:
    # The owner, suspecting someone, signs out every device from the one in hand.
    response = ApiClient(sign_in(user)[1].access_token).post("/api/v1/auth/logout-all")
    assert response.status_code == 204, response.content


EVENTS: dict[str, Callable[[User], None]] = {
    "password_change": change_password,
    "password_reset": reset_password,
    "phone_change": change_phone,
    "support_reset": move_to_new_number,
    "logout_everywhere": log_out_everywhere,
}


@pytest.mark.parametrize("event", EVENTS)
def test_a_sign_in_started_before_the_event_cannot_be_finished(event: str) -> None:
    owner = make_citizen(phone=OLD, totp=False)
    thief = ApiClient()
    login = thief.post(
        "/api/v1/auth/login", {"phone": OLD, "password": PASSWORD, "device_id": "thief"}
    )
    assert login.json()["second_factor_required"] is True
    challenge_id = login.json()["challenge_id"]
    code = last_code(OLD)

    EVENTS[event](owner)

    finished = thief.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": challenge_id, "method": "sms_otp", "code": code},
    )
    assert finished.status_code == 422
    assert finished.json()["code"] == "invalid_code"
    assert not DeviceSession.objects.filter(user=owner, device_id="thief").exists()
    resent = thief.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})
    assert resent.status_code == 404
    assert resent.json()["code"] == "challenge_not_found"


def test_a_password_reset_started_before_a_support_reset_cannot_set_the_password() -> None:
    owner = make_citizen(phone=OLD, totp=False)
    thief = ApiClient()
    started = thief.post("/api/v1/auth/password/reset", {"phone": OLD})
    code = last_code(OLD)

    move_to_new_number(owner)

    done = thief.post(
        "/api/v1/auth/password/reset/verify",
        {
            "challenge_id": started.json()["challenge_id"],
            "code": code,
            "new_password": "Thief-Str0ng-pass",
        },
    )
    assert done.status_code == 422
    assert done.json()["code"] == "invalid_code"
    owner.refresh_from_db()
    assert owner.must_reset_password is True
    assert not owner.check_password("Thief-Str0ng-pass")


def test_another_accounts_sign_in_in_progress_is_left_alone() -> None:
    owner = make_citizen(phone=OLD, totp=False)
    neighbour = make_citizen(phone="+84912000111", totp=False)
    login = ApiClient().post(
        "/api/v1/auth/login",
        {"phone": neighbour.phone, "password": PASSWORD, "device_id": "neighbour"},
    )
    change_password(owner)
    challenge = OtpChallenge.objects.get(pk=login.json()["challenge_id"])
    assert challenge.consumed_at is None
