"""Authenticator-code guessing escalates: the account's lockout starts afresh after
each lock, but the authenticator's failures are counted across lockouts, and past
OTP_MAX_AUTHENTICATOR_FAILURES within OTP_FAILURE_WINDOW_SECONDS it is refused."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from auth import sms_codes
from auth.actions.second_factor import verify_factor
from auth.ratelimit import PREFIX, failure_count
from backend.errors import RateLimited, Unprocessable
from backend.redis import get_redis
from tests.accounts.staff import enable_real_totp
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_limits(settings: Any) -> None:
    settings.OTP_MAX_FAILURES = 3
    settings.OTP_MAX_AUTHENTICATOR_FAILURES = 5


def lockout_passes(user: Any) -> None:
    """What OTP_LOCKOUT_SECONDS of waiting does to the account's lock."""
    get_redis().delete(f"{PREFIX}:{sms_codes.OTP_SCOPE}:lock:{sms_codes.user_account_key(user)}")


def wrong(user: Any, secret: str) -> str:
    right = pyotp.TOTP(secret).now()
    guess = f"{(int(right) + 1) % 10**6:06d}"
    try:
        verify_factor(user, "totp", guess, code_key="")
    except (Unprocessable, RateLimited) as exc:
        return str(exc.code)
    raise AssertionError("a wrong code was accepted")


def test_guesses_past_the_cap_lock_the_authenticator_across_lockouts() -> None:
    user = make_user()
    secret = enable_real_totp(user)
    assert [wrong(user, secret) for _ in range(4)] == ["invalid_code"] * 3 + [
        "too_many_failed_codes"
    ]
    lockout_passes(user)
    assert [wrong(user, secret) for _ in range(2)] == ["invalid_code"] * 2
    lockout_passes(user)
    with pytest.raises(RateLimited) as refused:
        verify_factor(user, "totp", pyotp.TOTP(secret).now(), code_key="")
    assert refused.value.code == "authenticator_locked"
    assert refused.value.retry_after > 3600
    user.refresh_from_db()
    assert user.totp_last_step is None  # the right code was not even looked at


def test_a_right_code_does_not_forget_the_failures_or_count_itself() -> None:
    user = make_user()
    secret = enable_real_totp(user)
    account = sms_codes.user_account_key(user)
    assert wrong(user, secret) == "invalid_code"
    assert wrong(user, secret) == "invalid_code"
    verify_factor(user, "totp", pyotp.TOTP(secret).now(), code_key="")
    assert failure_count("authenticator", account) == 2
    assert failure_count(sms_codes.OTP_SCOPE, account) == 0


def test_a_lockout_does_not_count_against_the_cap() -> None:
    user = make_user()
    secret = enable_real_totp(user)
    for _ in range(3):
        wrong(user, secret)
    assert [wrong(user, secret) for _ in range(5)] == ["too_many_failed_codes"] * 5
    assert failure_count("authenticator", sms_codes.user_account_key(user)) == 3
