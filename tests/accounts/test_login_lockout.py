"""Wrong passwords lock the guesser out, not the owner (issue 13, usability).

Counted per (number, client address) with a low limit, per number from everywhere
with a much higher ceiling (beyond it a right password needs a second factor, and
the answer does not confirm the password), and apart for the app and the admin.
"""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from django.test import Client

from auth import totp
from auth.models import DeviceSession, OtpChallenge
from tests.accounts.conftest import PASSWORD, all_sms, device, last_code, sms_to
from tests.accounts.staff import enable_real_totp, make_staff
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

PHONE = "+84912345678"
WRONG = "Wrong-pass!word1"


@pytest.fixture(autouse=True)
def _behind_one_proxy(settings: Any) -> None:
    # Clients told apart by the address our (one) trusted proxy saw.
    settings.TRUSTED_PROXY_COUNT = 1


def login(
    ip: str,
    password: str = PASSWORD,
    phone: str = PHONE,
    api: ApiClient | None = None,
    **extra: Any,
) -> Any:
    body = {"phone": phone, "password": password, **device(extra.pop("device_id", "dev-x"))}
    body.update(extra)
    client = api or ApiClient(language="en")
    return client.post("/api/v1/auth/login", body, headers={"X-Forwarded-For": ip})


def owner_with_known_device() -> tuple[Any, dict[str, str]]:
    user = make_user(PHONE)
    _, tokens = sign_in(user, device_id="owner-phone")
    return user, {"device_id": "owner-phone", "device_key": tokens.device_key}


def test_a_stranger_locks_only_their_own_client_out(settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES = 5
    _owner, known = owner_with_known_device()
    for _ in range(5):
        assert login("203.0.113.7", WRONG).json()["code"] == "invalid_credentials"
    locked = login("203.0.113.7", PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["code"] == "login_locked"
    # The owner, from their own address, signs in as usual.
    owner = login("198.51.100.20", **known)
    assert owner.status_code == 200, owner.content
    assert owner.json()["access_token"]


def test_four_wrong_then_right_from_one_client_passes_at_the_boundary(settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES = 5
    _owner, known = owner_with_known_device()
    for _ in range(4):
        login("198.51.100.20", WRONG)
    assert login("198.51.100.20", **known).json()["access_token"]


def test_below_the_number_ceiling_a_right_password_needs_no_second_step(settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES_PER_NUMBER = 3
    _owner, known = owner_with_known_device()
    for index in range(2):
        login(f"203.0.113.{index}", WRONG)
    assert login("198.51.100.20", **known).json()["second_factor_required"] is False


def _attack_from_everywhere(settings: Any, failures: int = 3) -> None:
    settings.LOGIN_MAX_FAILURES_PER_NUMBER = failures
    for index in range(failures):
        assert login(f"203.0.113.{index}", WRONG).json()["code"] == "invalid_credentials"


def test_over_the_number_ceiling_the_owner_passes_with_password_and_sms_code(
    settings: Any,
) -> None:
    _owner, known = owner_with_known_device()
    _attack_from_everywhere(settings)
    api = ApiClient()
    step = login("198.51.100.20", api=api, **known)
    assert step.status_code == 200
    assert step.json()["second_factor_required"] is True
    assert step.json()["access_token"] is None
    verified = api.post(
        "/api/v1/auth/login/verify",
        {
            "challenge_id": step.json()["challenge_id"],
            "method": "sms_otp",
            "code": last_code(PHONE),
        },
    )
    assert verified.status_code == 200, verified.content
    session = DeviceSession.objects.get(pk=verified.json()["session_id"])
    assert session.second_factor == "sms_otp"


def test_over_the_number_ceiling_a_wrong_password_looks_the_same_and_never_completes(
    settings: Any,
) -> None:
    owner, _known = owner_with_known_device()
    secret = enable_real_totp(owner)
    _attack_from_everywhere(settings)
    before = len(all_sms())

    right = login("198.51.100.20", second_factor="totp")
    wrong = login("203.0.113.99", WRONG, second_factor="totp")
    wrong_sms = login("203.0.113.98", WRONG)

    assert right.status_code == wrong.status_code == wrong_sms.status_code == 200
    assert set(right.json()) == set(wrong.json())
    assert right.json()["methods"] == wrong.json()["methods"] == wrong_sms.json()["methods"]
    assert wrong.json()["second_factor_required"] is True
    assert len(all_sms()) == before  # a decoy texts nothing
    code = pyotp.TOTP(secret).generate_otp(totp.time_step())
    decoy = ApiClient().post(
        "/api/v1/auth/login/verify",
        {"challenge_id": wrong.json()["challenge_id"], "method": "totp", "code": code},
    )
    assert decoy.status_code == 422
    assert decoy.json()["code"] == "invalid_code"
    decoy_sms = ApiClient().post(
        "/api/v1/auth/login/verify",
        {"challenge_id": wrong_sms.json()["challenge_id"], "method": "sms_otp", "code": "123456"},
    )
    assert decoy_sms.json()["code"] == "invalid_code"
    assert OtpChallenge.objects.get(pk=wrong.json()["challenge_id"]).user_id is None
    real = ApiClient().post(
        "/api/v1/auth/login/verify",
        {"challenge_id": right.json()["challenge_id"], "method": "totp", "code": code},
    )
    assert real.status_code == 200, real.content
    assert sms_to(PHONE) == []


def test_over_the_number_ceiling_the_methods_do_not_tell_whether_the_number_is_registered(
    settings: Any,
) -> None:
    """Nothing is proven yet, so the methods offered are the same for every number: an
    account's own (its authenticator, its recovery codes left) would tell strangers
    that the number is registered."""
    settings.LOGIN_MAX_FAILURES_PER_NUMBER = 3
    plain, with_totp, unknown = PHONE, "+84912340001", "+84912340002"
    make_user(plain)
    enable_real_totp(make_user(with_totp))
    answers = []
    for phone in (plain, with_totp, unknown):
        for index in range(3):
            login(f"203.0.113.{index}", WRONG, phone=phone)
        answers.append(login("198.51.100.20", WRONG, phone=phone).json())

    assert [answer["second_factor_required"] for answer in answers] == [True, True, True]
    assert [answer["methods"] for answer in answers] == [["sms_otp", "totp", "recovery_code"]] * 3


def test_over_the_number_ceiling_a_spent_sms_budget_answers_the_same_whatever_the_password(
    settings: Any,
) -> None:
    """A wrong password's decoy counts the number's SMS limits as the right one's code
    does: with the budget spent (by password resets anyone may ask), both are 429,
    where a decoy that skipped the count would answer 200 to a wrong password only."""
    settings.SMS_RESEND_SECONDS = 0
    settings.SMS_PER_NUMBER_PER_HOUR = 2
    make_user(PHONE)
    _attack_from_everywhere(settings)
    for _ in range(2):
        assert ApiClient().post("/api/v1/auth/password/reset", {"phone": PHONE}).status_code == 202

    right = login("198.51.100.20")
    wrong = login("198.51.100.21", WRONG)

    assert right.status_code == wrong.status_code == 429
    assert right.json()["code"] == wrong.json()["code"] == "sms_limit_reached"


def test_over_the_number_ceiling_a_decoys_authenticator_tries_count_like_a_real_ones(
    settings: Any,
) -> None:
    """A decoy refused every code without counting it, where a real challenge says
    `code_attempts_exceeded` after five: six tries told a right password from a wrong one."""
    owner = make_user(PHONE)
    enable_real_totp(owner)
    _attack_from_everywhere(settings)
    challenges = [
        login(ip, password, second_factor="totp").json()["challenge_id"]
        for ip, password in (("198.51.100.20", PASSWORD), ("203.0.113.99", WRONG))
    ]

    answers = [
        [
            ApiClient()
            .post(
                "/api/v1/auth/login/verify",
                {"challenge_id": challenge_id, "method": "totp", "code": "000000"},
            )
            .json()["code"]
            for _ in range(6)
        ]
        for challenge_id in challenges
    ]

    assert answers[0] == answers[1] == ["invalid_code"] * 5 + ["code_attempts_exceeded"]


def test_the_owners_session_still_reauthenticates_and_changes_password(settings: Any) -> None:
    owner = make_user(PHONE)
    _, tokens = sign_in(owner)
    _attack_from_everywhere(settings)
    api = ApiClient(token=tokens.access_token)
    headers = {"X-Forwarded-For": "198.51.100.20"}
    reauth = api.post("/api/v1/auth/reauthenticate", {"password": PASSWORD}, headers=headers)
    assert reauth.status_code == 204
    changed = api.post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": "An0ther-Str0ng-pass"},
        headers=headers,
    )
    assert changed.status_code == 204, changed.content


def test_app_failures_do_not_lock_the_admin_and_the_reverse(settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES = 2
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    staff = make_staff(totp=False)
    ip = "198.51.100.30"
    for _ in range(2):
        login(ip, WRONG, phone=staff.phone)
    assert login(ip, phone=staff.phone).json()["code"] == "login_locked"
    admin = Client(headers={"X-Forwarded-For": ip})
    signed_in = admin.post(
        "/admin/login/", {"username": staff.phone, "password": PASSWORD, "next": "/admin/"}
    )
    assert signed_in.status_code == 302
    other = make_staff(totp=False)
    fresh = Client(headers={"X-Forwarded-For": ip})
    for _ in range(2):
        fresh.post("/admin/login/", {"username": other.phone, "password": WRONG})
    locked = fresh.post("/admin/login/", {"username": other.phone, "password": PASSWORD})
    assert locked.status_code == 200
    assert fresh.session.get("_auth_user_id") is None
    app = login(ip, phone=other.phone)
    assert app.status_code == 200
    assert app.json()["second_factor_required"] is True  # a new device, not a lock


def _admin_post(client: Client, phone: str, password: str, code: str = "") -> Any:
    return client.post(
        "/admin/login/",
        {"username": phone, "password": password, "totp_code": code, "next": "/admin/"},
    )


def test_admin_number_ceiling_lets_only_password_and_code_through(settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_NUMBER = 2
    staff = make_staff(totp=False)
    secret = enable_real_totp(staff)
    for index in range(2):
        _admin_post(Client(headers={"X-Forwarded-For": f"203.0.113.{index}"}), staff.phone, WRONG)

    def attempt(password: str, code: str) -> tuple[Any, Client]:
        client = Client(headers={"X-Forwarded-For": "198.51.100.40", "Accept-Language": "en"})
        return _admin_post(client, staff.phone, password, code), client

    good_code = pyotp.TOTP(secret).generate_otp(totp.time_step())
    no_code, c1 = attempt(PASSWORD, "")
    wrong_password, c2 = attempt(WRONG, good_code)
    message = "Too many failed sign-ins on this number."
    assert message in no_code.content.decode()
    assert message in wrong_password.content.decode()
    assert c1.session.get("_auth_user_id") is None
    assert c2.session.get("_auth_user_id") is None
    both, c3 = attempt(PASSWORD, good_code)
    assert both.status_code == 302
    assert c3.session.get("_auth_user_id") == str(staff.pk)
