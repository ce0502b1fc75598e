"""Limits on codes and SMS: tries per code, account lockout, resend and daily caps."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from auth.models import DeviceSession, User
from auth.ratelimit import failure_count, lock_remaining
from backend.errors import RETRY_AFTER_SECONDS
from tests.accounts.conftest import (
    all_sms,
    deliver_sms,
    device,
    last_code,
    register,
    sms_to,
    wrong_code,
)
from tests.conftest import ApiClient

PHONE = "+84912345678"


def _verify(api, challenge_id: str, code: str):
    return api.post(
        "/api/v1/auth/register/verify", {"challenge_id": challenge_id, "code": code, **device()}
    )


def _account(phone: str = PHONE) -> str:
    return f"user:{User.objects.get(phone=phone).pk}"


def test_five_wrong_tries_spend_a_code(api, db) -> None:
    challenge_id = register(api).json()["challenge_id"]
    code = last_code(PHONE)
    for _ in range(5):
        response = _verify(api, challenge_id, wrong_code(code))
        assert response.json()["code"] == "invalid_code"
    sixth = _verify(api, challenge_id, code)
    assert sixth.status_code == 422
    assert sixth.json()["code"] == "code_attempts_exceeded"
    assert User.objects.get(phone=PHONE).phone_verified_at is None


def test_ten_failures_lock_the_account_and_a_new_code_does_not_reset_them(
    api, db, settings
) -> None:
    settings.SMS_RESEND_SECONDS = 0
    challenge_id = register(api).json()["challenge_id"]
    for attempt in range(1, 10):
        if attempt == 6:  # the first code's five tries are spent: ask for another
            api.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})
        response = _verify(api, challenge_id, wrong_code(last_code(PHONE)))
        assert response.json()["code"] == "invalid_code"
    assert failure_count("otp", _account()) == 9
    # A new code, then the 10th failure: the account locks.
    assert api.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id}).status_code == 202
    assert failure_count("otp", _account()) == 9
    tenth = _verify(api, challenge_id, wrong_code(last_code(PHONE)))
    assert tenth.json()["code"] == "invalid_code"
    locked = _verify(api, challenge_id, last_code(PHONE))
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_failed_codes"
    assert locked.headers["Retry-After"] == "900"
    assert User.objects.get(phone=PHONE).phone_verified_at is None


def test_nine_failures_then_the_right_code_succeeds_and_resets_the_count(api, db, settings) -> None:
    settings.OTP_MAX_ATTEMPTS_PER_CODE = 20
    challenge_id = register(api).json()["challenge_id"]
    for _ in range(9):
        _verify(api, challenge_id, wrong_code(last_code(PHONE)))
    assert _verify(api, challenge_id, last_code(PHONE)).status_code == 201
    assert failure_count("otp", _account()) == 0
    assert lock_remaining("otp", _account()) == 0


def _race(challenge_id: str, code: str, workers: int) -> Counter[str]:
    barrier = threading.Barrier(workers)
    results: list[str] = []
    lock = threading.Lock()

    def guess() -> None:
        try:
            barrier.wait()
            response = _verify(ApiClient(), challenge_id, code)
            with lock:  # an error's code, or the status of a success
                results.append(response.json().get("code", str(response.status_code)))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(results)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_wrong_codes_lock_the_account_at_exactly_ten(settings) -> None:
    settings.OTP_MAX_ATTEMPTS_PER_CODE = 100  # only the account limit is in play
    api = ApiClient()
    challenge_id = register(api).json()["challenge_id"]
    code = last_code(PHONE)
    results = _race(challenge_id, wrong_code(code), 50)
    assert results == Counter({"invalid_code": 10, "too_many_failed_codes": 40})
    assert lock_remaining("otp", _account()) > 0
    # Locked: even the right code is refused now.
    assert _verify(api, challenge_id, code).json()["code"] == "too_many_failed_codes"


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_guesses_on_one_code_get_exactly_five_tries() -> None:
    api = ApiClient()
    challenge_id = register(api).json()["challenge_id"]
    results = _race(challenge_id, wrong_code(last_code(PHONE)), 50)
    assert results == Counter({"invalid_code": 5, "code_attempts_exceeded": 45})
    assert failure_count("otp", _account()) == 5


@pytest.mark.django_db(transaction=True)
def test_the_right_code_sent_five_times_at_once_signs_in_exactly_once() -> None:
    api = ApiClient()
    challenge_id = register(api).json()["challenge_id"]
    # Five: the tries one code allows, so every request reaches the code check.
    results = _race(challenge_id, last_code(PHONE), 5)
    assert results == Counter({"201": 1, "invalid_code": 4})
    assert DeviceSession.objects.count() == 1
    assert User.objects.get(phone=PHONE).phone_verified_at is not None


def test_resend_sooner_than_60_seconds_is_429_with_retry_after(api, db) -> None:
    challenge_id = register(api).json()["challenge_id"]
    response = api.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})
    assert response.status_code == 429
    assert response.json()["code"] == "otp_resend_too_soon"
    assert 59 <= int(response.headers["Retry-After"]) <= 60
    assert response.json()["details"]["retry_after"] == int(response.headers["Retry-After"])
    assert len(sms_to(PHONE)) == 1


def test_at_most_five_sms_per_number_per_hour(api, db, settings) -> None:
    settings.SMS_RESEND_SECONDS = 0
    challenge_id = register(api).json()["challenge_id"]
    deliver_sms()  # each code is texted before the next is asked (a code asked again
    # before its job ran replaces it: the job of the older one sends nothing)
    for _ in range(4):
        assert (
            api.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id}).status_code == 202
        )
        deliver_sms()
    sixth = api.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})
    assert sixth.status_code == 429
    assert sixth.json()["code"] == "sms_limit_reached"
    assert 3590 <= int(sixth.headers["Retry-After"]) <= 3600
    assert len(sms_to(PHONE)) == 5


def test_at_most_ten_sms_per_number_per_day(api, db, settings) -> None:
    settings.SMS_RESEND_SECONDS = 0
    settings.SMS_PER_NUMBER_PER_HOUR = 100
    challenge_id = register(api).json()["challenge_id"]
    deliver_sms()
    for _ in range(9):
        api.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})
        deliver_sms()
    eleventh = api.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})
    assert eleventh.status_code == 429
    assert eleventh.json()["code"] == "sms_limit_reached"
    assert 86390 <= int(eleventh.headers["Retry-After"]) <= 86400
    assert len(sms_to(PHONE)) == 10


def test_per_ip_daily_cap_stops_sms_pumping_across_numbers(api, db, settings) -> None:
    settings.SMS_PER_IP_PER_DAY = 3
    for index in range(3):
        assert register(api, f"091234560{index}").status_code == 202
    fourth = register(api, "0912345609")
    assert fourth.status_code == 429
    assert fourth.json()["code"] == "sms_limit_reached"
    assert len(all_sms()) == 3
    assert not User.objects.filter(phone="+84912345609").exists()


def test_global_daily_cap(api, db, settings) -> None:
    settings.SMS_GLOBAL_PER_DAY = 2
    assert register(api, "0912345601").status_code == 202
    assert register(api, "0912345602").status_code == 202
    response = register(api, "0912345603")
    assert response.status_code == 429
    assert response.json()["code"] == "sms_limit_reached"
    assert len(all_sms()) == 2


def test_forged_x_forwarded_for_does_not_dodge_the_ip_cap(api, db, settings) -> None:
    settings.SMS_PER_IP_PER_DAY = 2
    settings.TRUSTED_PROXY_COUNT = 0
    for index, forged in enumerate(["10.0.0.1", "10.0.0.2"]):
        response = api.post(
            "/api/v1/auth/register",
            {"phone": f"091234560{index}", "full_name": "A", "password": "Str0ng-pass!word"},
            headers={"X-Forwarded-For": forged},
        )
        assert response.status_code == 202
    third = api.post(
        "/api/v1/auth/register",
        {"phone": "0912345609", "full_name": "A", "password": "Str0ng-pass!word"},
        headers={"X-Forwarded-For": "10.0.0.3"},
    )
    assert third.status_code == 429


def test_behind_one_proxy_only_the_proxy_written_address_counts(api, db, settings) -> None:
    settings.SMS_PER_IP_PER_DAY = 2
    settings.TRUSTED_PROXY_COUNT = 1
    statuses = []
    for index, forged in enumerate(["1.1.1.1", "2.2.2.2", "3.3.3.3"]):
        response = api.post(
            "/api/v1/auth/register",
            {"phone": f"091234560{index}", "full_name": "A", "password": "Str0ng-pass!word"},
            headers={"X-Forwarded-For": f"{forged}, 203.0.113.7"},
        )
        statuses.append(response.status_code)
    assert statuses == [202, 202, 429]
    # Another real client behind the same proxy is not affected.
    other = api.post(
        "/api/v1/auth/register",
        {"phone": "0912345609", "full_name": "A", "password": "Str0ng-pass!word"},
        headers={"X-Forwarded-For": "203.0.113.8"},
    )
    assert other.status_code == 202


def test_per_ip_cap_counts_an_ipv6_host_by_its_network(api, db, settings) -> None:
    """One host holds a whole /64: a fresh address per request is no fresh budget."""
    settings.SMS_PER_IP_PER_DAY = 2
    settings.TRUSTED_PROXY_COUNT = 1

    def register_from(index: int, address: str) -> int:
        body = {"phone": f"091234560{index}", "full_name": "A", "password": "Str0ng-pass!word"}
        headers = {"X-Forwarded-For": address}
        return api.post("/api/v1/auth/register", body, headers=headers).status_code

    same_host = ["2001:db8:1:2::1", "2001:db8:1:2:a:b:c:d", "2001:db8:1:2::ffff"]
    assert [register_from(i, address) for i, address in enumerate(same_host)] == [202, 202, 429]
    assert register_from(5, "2001:db8:1:3::1") == 202  # the next /64 is someone else
    # An IPv4 client seen through a dual-stack socket is the same client.
    assert [register_from(6, "::ffff:203.0.113.7"), register_from(7, "203.0.113.7")] == [202, 202]
    assert register_from(8, "203.0.113.7") == 429
    # The challenge keeps the address the request came from, not its network.
    assert User.objects.get(phone="+84912345601").otp_challenges.get().ip == (
        "2001:db8:1:2:a:b:c:d"
    )


def test_otp_verification_fails_closed_when_redis_is_unreachable(api, db, settings) -> None:
    challenge_id = register(api).json()["challenge_id"]
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.REDIS_SOCKET_TIMEOUT = 0.5
    response = _verify(api, challenge_id, last_code(PHONE))
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    # README.md's 503 row: retry later, after `Retry-After` (as for `cache_unavailable`).
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert User.objects.get(phone=PHONE).phone_verified_at is None


def test_no_sms_is_sent_when_redis_is_unreachable(api, db, settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.5
    response = register(api)
    assert response.status_code == 503
    assert all_sms() == []
    assert not User.objects.filter(phone=PHONE).exists()


def test_four_wrong_tries_then_the_right_code_still_works(api, db) -> None:
    challenge_id = register(api).json()["challenge_id"]
    code = last_code(PHONE)
    for _ in range(4):
        assert _verify(api, challenge_id, wrong_code(code)).json()["code"] == "invalid_code"
    assert _verify(api, challenge_id, code).status_code == 201


def test_without_redis_the_django_cache_still_enforces_the_limits(api, db, settings) -> None:
    settings.REDIS_URL = ""  # the embedded default: counters fall back to the cache
    challenge_id = register(api).json()["challenge_id"]
    again = api.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})
    assert again.status_code == 429
    assert again.json()["code"] == "otp_resend_too_soon"
    code = last_code(PHONE)
    for _ in range(5):
        assert _verify(api, challenge_id, wrong_code(code)).json()["code"] == "invalid_code"
    assert _verify(api, challenge_id, code).json()["code"] == "code_attempts_exceeded"
