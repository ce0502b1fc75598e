"""The owner is told by SMS, in the account's language, when the account's security
changes: an authenticator app turned on or off, new recovery codes, the password
changed or reset. The notice is queued with the change: a change refused (a wrong
code, a wrong password) sends none."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from django.utils import timezone

from auth import totp
from auth.actions.second_factor import generate_recovery_codes
from auth.models import User
from tests.accounts.conftest import PASSWORD, all_sms, last_code, wrong_code
from tests.accounts.staff import enable_real_totp
from tests.conftest import ApiClient, api_as, make_user

pytestmark = pytest.mark.django_db

PHONE = "+84912345678"
NEW_PASSWORD = "An0ther-pass!word"
EN_END = " If this was not you, contact support now."
VI_END = " Neu khong phai ban thuc hien, hay lien he bo phan ho tro ngay."


def notices() -> list[tuple[str, str, str]]:
    """(to, purpose, text) of every notice texted so far (codes left out)."""
    return [
        (m["to"], m["purpose"], m["text"]) for m in all_sms() if m["purpose"].startswith("notice.")
    ]


def next_code(secret: str) -> str:
    """The next step's code: a step is accepted once."""
    return pyotp.TOTP(secret).at(timezone.now() + dt.timedelta(seconds=totp.STEP_SECONDS))


def owner(language: str = "en") -> User:
    return make_user(PHONE, language=language)


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "An authenticator app was turned on for your Public Services account." + EN_END),
        ("vi", "Tai khoan Dich vu cong cua ban vua bat ung dung xac thuc." + VI_END),
    ],
)
def test_turning_the_authenticator_on_tells_the_owner_in_the_accounts_language(
    language: str, text: str
) -> None:
    # The request's language is the other one: the notice follows the account's.
    api = api_as(owner(language), language="vi" if language == "en" else "en")
    secret = api.post("/api/v1/auth/totp/enrol").json()["secret"]

    confirmed = api.post("/api/v1/auth/totp/confirm", {"code": pyotp.TOTP(secret).now()})

    assert confirmed.status_code == 200, confirmed
    assert notices() == [(PHONE, "notice.totp_enabled", text)]


def test_a_wrong_first_authenticator_code_tells_nothing() -> None:
    api = api_as(owner())
    secret = api.post("/api/v1/auth/totp/enrol").json()["secret"]

    refused = api.post("/api/v1/auth/totp/confirm", {"code": wrong_code(pyotp.TOTP(secret).now())})

    assert refused.json()["code"] == "invalid_code"
    assert notices() == []


def test_turning_the_authenticator_off_tells_the_owner() -> None:
    user = owner()
    secret = enable_real_totp(user)

    response = api_as(user).post("/api/v1/auth/totp/disable", {"code": pyotp.TOTP(secret).now()})

    assert response.status_code == 204, response
    assert notices() == [
        (
            PHONE,
            "notice.totp_disabled",
            "The authenticator app of your Public Services account was turned off." + EN_END,
        )
    ]


def test_a_wrong_code_leaves_the_authenticator_on_and_tells_nothing() -> None:
    user = owner()
    secret = enable_real_totp(user)

    refused = api_as(user).post(
        "/api/v1/auth/totp/disable", {"code": wrong_code(pyotp.TOTP(secret).now())}
    )

    assert refused.json()["code"] == "invalid_code"
    user.refresh_from_db()
    assert user.has_totp
    assert notices() == []


def test_new_recovery_codes_tell_the_owner_in_the_accounts_language() -> None:
    user = owner("vi")
    secret = enable_real_totp(user)
    generate_recovery_codes(user)

    response = api_as(user).post(
        "/api/v1/auth/recovery-codes/regenerate", {"code": pyotp.TOTP(secret).now()}
    )

    assert response.status_code == 200, response
    assert notices() == [
        (
            PHONE,
            "notice.recovery_codes_regenerated",
            "Tai khoan Dich vu cong cua ban vua tao bo ma khoi phuc moi, cac ma cu khong con "
            "dung duoc. Neu khong phai ban, hay lien he bo phan ho tro ngay.",
        )
    ]


def test_a_wrong_code_makes_no_recovery_codes_and_tells_nothing() -> None:
    user = owner()
    secret = enable_real_totp(user)
    generate_recovery_codes(user)

    refused = api_as(user).post(
        "/api/v1/auth/recovery-codes/regenerate", {"code": wrong_code(next_code(secret))}
    )

    assert refused.json()["code"] == "invalid_code"
    assert notices() == []


def test_a_password_change_tells_the_owner() -> None:
    response = api_as(owner()).post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )

    assert response.status_code == 204, response
    assert notices() == [
        (
            PHONE,
            "notice.password_changed",
            "The password of your Public Services account was changed." + EN_END,
        )
    ]


def test_a_wrong_current_password_changes_nothing_and_tells_nothing() -> None:
    user = owner()

    refused = api_as(user).post(
        "/api/v1/auth/password/change",
        {"current_password": "not-" + PASSWORD, "new_password": NEW_PASSWORD},
    )

    assert refused.status_code == 422
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert notices() == []


def _start_reset() -> str:
    started = ApiClient().post("/api/v1/auth/password/reset", {"phone": "0912345678"})
    assert started.status_code == 202, started
    return str(started.json()["challenge_id"])


def test_a_password_reset_tells_the_owner_in_the_accounts_language() -> None:
    owner("vi")
    challenge_id = _start_reset()

    response = ApiClient(language="en").post(
        "/api/v1/auth/password/reset/verify",
        {"challenge_id": challenge_id, "code": last_code(PHONE), "new_password": NEW_PASSWORD},
    )

    assert response.status_code == 204, response
    assert notices() == [
        (
            PHONE,
            "notice.password_reset",
            "Mat khau tai khoan Dich vu cong cua ban vua duoc dat lai bang ma gui toi so nay. "
            "Neu khong phai ban, hay lien he bo phan ho tro ngay.",
        )
    ]


def test_a_wrong_reset_code_resets_nothing_and_tells_nothing() -> None:
    user = owner()
    challenge_id = _start_reset()

    refused = ApiClient().post(
        "/api/v1/auth/password/reset/verify",
        {
            "challenge_id": challenge_id,
            "code": wrong_code(last_code(PHONE)),
            "new_password": NEW_PASSWORD,
        },
    )

    assert refused.json()["code"] == "invalid_code"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert notices() == []
