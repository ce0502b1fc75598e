"""Concurrent verifications of one code: exactly one succeeds (the attacker's OTP races).

Sign-up races are in tests/accounts/test_otp_limits.py; these cover the other
flows a code opens: sign-in on a new device, password reset, and one
authenticator code presented to two sign-ins at once.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from django.db import connection

from auth import totp
from auth.models import DeviceSession
from tests.accounts.conftest import PASSWORD, device, last_code
from tests.accounts.staff import enable_real_totp
from tests.conftest import ApiClient, make_user

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+84912345678"


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def race(calls: list[Callable[[], Any]]) -> Counter[str]:
    """Run the calls at once; count each answer's error code, or its status."""
    barrier = threading.Barrier(len(calls))
    results: list[str] = []
    lock = threading.Lock()

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            response = call()
            body = response.json() if response.content else {}
            with lock:
                results.append(body.get("code") or str(response.status_code))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(results)


def login(second_factor: str = "sms_otp") -> str:
    response = ApiClient().post(
        "/api/v1/auth/login",
        {"phone": PHONE, "password": PASSWORD, "second_factor": second_factor, **device()},
    )
    assert response.status_code == 200, response.content
    return str(response.json()["challenge_id"])


def test_one_login_code_sent_five_times_at_once_opens_one_session() -> None:
    user = make_user(PHONE)
    challenge_id = login()
    code = last_code(PHONE)
    body = {"challenge_id": challenge_id, "method": "sms_otp", "code": code}

    results = race([lambda: ApiClient().post("/api/v1/auth/login/verify", body)] * 5)

    assert results == Counter({"200": 1, "invalid_code": 4})
    assert DeviceSession.objects.filter(user=user).count() == 1


def test_one_reset_code_sent_five_times_at_once_sets_the_password_once() -> None:
    user = make_user(PHONE)
    started = ApiClient().post("/api/v1/auth/password/reset", {"phone": PHONE})
    challenge_id = started.json()["challenge_id"]
    code = last_code(PHONE)
    passwords = [f"New-Str0ng-pass-{index}" for index in range(5)]

    def reset(password: str) -> Callable[[], Any]:
        body = {"challenge_id": challenge_id, "code": code, "new_password": password}
        return lambda: ApiClient().post("/api/v1/auth/password/reset/verify", body)

    results = race([reset(password) for password in passwords])

    assert results == Counter({"204": 1, "invalid_code": 4})
    user.refresh_from_db()
    assert sum(user.check_password(password) for password in passwords) == 1


def test_one_authenticator_code_at_two_sign_ins_at_once_opens_one_session() -> None:
    user = make_user(PHONE)
    secret = enable_real_totp(user)
    first, second = login("totp"), login("totp")
    code = pyotp.TOTP(secret).generate_otp(totp.time_step())

    def verify(challenge_id: str) -> Callable[[], Any]:
        body = {"challenge_id": challenge_id, "method": "totp", "code": code}
        return lambda: ApiClient().post("/api/v1/auth/login/verify", body)

    results = race([verify(first), verify(second)])

    assert results == Counter({"200": 1, "invalid_code": 1})
    assert DeviceSession.objects.filter(user=user).count() == 1
