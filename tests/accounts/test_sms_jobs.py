"""SMS codes leave through a job, never inside the request (the SMS oracle, closed).

A request that opens or renews a challenge counts the SMS limits, writes the
challenge and queues `accounts.send_code`; the worker makes the code, keeps its
hash and texts it, retried while the gateway fails. For a number whose account
must not be revealed (password reset, phone change, a decoy's resend, sign-in
under attack with a wrong password) the request does the same and the job sends
nothing: neither the answer, nor its status when the gateway is down, nor the
time spent waiting for the gateway tells the two apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from auth.models import OtpChallenge
from fakes.sms_gateway import FakeGateway
from tests.accounts.conftest import PASSWORD, deliver_sms, device, last_code, register
from tests.conftest import ApiClient, make_user, run_jobs_until_idle, sign_in

KNOWN = "+84912345678"
UNKNOWN = "+84987654321"
OWNER = "+84911111111"
TAKEN = "+84986543210"
CODE = re.compile(r"^(\d{6}) ")


def code_jobs() -> list[dict[str, Any]]:
    """The `accounts.send_code` jobs: status, attempts, args."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, attempts, args FROM procrastinate_jobs "
            "WHERE task_name = 'accounts.send_code' ORDER BY id"
        )
        return [
            {
                "status": status,
                "attempts": attempts,
                "args": json.loads(args) if isinstance(args, str) else args,
            }
            for status, attempts, args in cursor.fetchall()
        ]


def make_retries_due() -> None:
    """Skip the backoff of retried SMS jobs (the retry itself is procrastinate's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() "
            "WHERE queue_name = 'sms' AND status = 'todo'"
        )


def gateway_codes(gateway: FakeGateway, phone: str) -> list[str]:
    return [
        match.group(1)
        for message in gateway.messages
        if message.get("Phone") == phone.lstrip("+")
        and (match := CODE.match(message.get("Content", "")))
    ]


def same_answer(first: Any, second: Any) -> None:
    """Same status and the same body but for the challenge's own id."""
    assert first.status_code == second.status_code, (first, second)
    one, other = first.json(), second.json()
    assert set(one) == set(other)
    assert {k: v for k, v in one.items() if k != "challenge_id"} == {
        k: v for k, v in other.items() if k != "challenge_id"
    }


# --- The request: no gateway call, the same answer, gateway up or down ---------------


def _reset(phone: str) -> Any:
    return ApiClient().post("/api/v1/auth/password/reset", {"phone": phone})


def _phone_change(settings: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    make_user(TAKEN)  # another account's verified number
    api = ApiClient(sign_in(make_user(OWNER))[1].access_token)

    def start(phone: str) -> Callable[[], Any]:
        return lambda: api.post(
            "/api/v1/auth/phone/change", {"new_phone": phone, "password": PASSWORD}
        )

    return start(UNKNOWN), start(TAKEN)


def _resend(settings: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    settings.SMS_RESEND_SECONDS = 0
    make_user(KNOWN)
    real = _reset(KNOWN).json()["challenge_id"]
    decoy = _reset(UNKNOWN).json()["challenge_id"]

    def resend(challenge_id: str) -> Callable[[], Any]:
        return lambda: ApiClient().post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})

    return resend(real), resend(decoy)


def _register(settings: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    make_user(KNOWN)
    return lambda: register(ApiClient(), UNKNOWN), lambda: register(ApiClient(), KNOWN)


def _login_under_attack(settings: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    settings.SMS_RESEND_SECONDS = 0  # both ask a code for the same number and flow
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_MAX_FAILURES_PER_NUMBER = 3
    make_user(KNOWN)
    for index in range(3):
        ApiClient().post(
            "/api/v1/auth/login",
            {"phone": KNOWN, "password": "Wrong-pass!word1", **device()},
            headers={"X-Forwarded-For": f"203.0.113.{index}"},
        )

    def login(password: str, ip: str) -> Callable[[], Any]:
        return lambda: ApiClient().post(
            "/api/v1/auth/login",
            {"phone": KNOWN, "password": password, **device()},
            headers={"X-Forwarded-For": ip},
        )

    return login(PASSWORD, "198.51.100.20"), login("Wrong-pass!word2", "198.51.100.21")


def _password_reset(settings: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    make_user(KNOWN)
    return lambda: _reset(KNOWN), lambda: _reset(UNKNOWN)


FLOWS = {
    "password reset, registered or not": _password_reset,
    "phone change to a free or a taken number": _phone_change,
    "resend of a real or a decoy challenge": _resend,
    "sign-up of a new or a registered number": _register,
    "sign-in under attack, right or wrong password": _login_under_attack,
}


@pytest.mark.parametrize("gateway_up", [True, False], ids=["gateway up", "gateway down"])
@pytest.mark.parametrize("flow", list(FLOWS))
def test_the_request_never_calls_the_gateway_and_answers_the_same(
    db: None, gateway: FakeGateway, settings: Any, flow: str, gateway_up: bool
) -> None:
    real, decoy = FLOWS[flow](settings)
    gateway.http_status = 200 if gateway_up else 503
    before = len(code_jobs())

    real_answer = real()
    after_real = len(code_jobs())
    decoy_answer = decoy()

    assert real_answer.status_code in (200, 202), real_answer.content
    same_answer(real_answer, decoy_answer)
    assert gateway.messages == []  # nothing was sent, or even tried, by the requests
    # Each request queued its one job: what it will send is the worker's business.
    assert after_real - before == len(code_jobs()) - after_real == 1


# --- The job: it texts the code, which then works -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_worker_texts_the_code_and_it_resets_the_password(gateway: FakeGateway) -> None:
    make_user(KNOWN)
    started = _reset(KNOWN)
    _reset(UNKNOWN)
    assert gateway.messages == []

    run_jobs_until_idle(["sms"])

    [code] = gateway_codes(gateway, KNOWN)
    assert [m["Phone"] for m in gateway.messages] == [KNOWN.lstrip("+")]  # the decoy: nothing
    assert [job["status"] for job in code_jobs()] == ["succeeded", "succeeded"]
    done = ApiClient().post(
        "/api/v1/auth/password/reset/verify",
        {
            "challenge_id": started.json()["challenge_id"],
            "code": code,
            "new_password": "N3w-pass!word",
        },
    )
    assert done.status_code == 204, done.content


def test_the_job_queue_holds_neither_the_code_nor_the_number(db: None) -> None:
    make_user(KNOWN)
    challenge_id = _reset(KNOWN).json()["challenge_id"]
    [job] = code_jobs()
    assert set(job["args"]) == {"challenge_id", "requested_at", "notice", "language"}
    assert job["args"]["language"] == "vi"  # the request's: the text is rendered by the job
    assert job["args"]["challenge_id"] == challenge_id
    assert OtpChallenge.objects.get(pk=challenge_id).code_hash == ""  # no code made yet

    [(task, outcome)] = deliver_sms()

    assert (task, outcome) == ("accounts.send_code", "sent")
    code = last_code(KNOWN)
    with connection.cursor() as cursor:
        cursor.execute("SELECT args::text FROM procrastinate_jobs WHERE queue_name = 'sms'")
        stored = " ".join(row[0] for row in cursor.fetchall())
    assert code not in stored
    assert KNOWN not in stored
    assert KNOWN.lstrip("+") not in stored
    challenge = OtpChallenge.objects.get(pk=challenge_id)
    assert len(challenge.code_hash) == 64
    assert code not in challenge.code_hash


# --- Retries --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_gateway_failure_is_retried_and_the_code_of_the_retry_works(
    gateway: FakeGateway,
) -> None:
    make_user(KNOWN)
    gateway.http_status = 503
    started = _reset(KNOWN)
    assert started.status_code == 202

    run_jobs_until_idle(["sms"])

    [job] = code_jobs()
    assert (job["status"], job["attempts"]) == ("todo", 1)  # scheduled again, later
    assert len(gateway.messages) == 1  # the one try, refused
    gateway.http_status = 200
    make_retries_due()
    run_jobs_until_idle(["sms"])

    [job] = code_jobs()
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    [code] = gateway_codes(gateway, KNOWN)[1:]
    done = ApiClient().post(
        "/api/v1/auth/password/reset/verify",
        {
            "challenge_id": started.json()["challenge_id"],
            "code": code,
            "new_password": "N3w-pass!word",
        },
    )
    assert done.status_code == 204, done.content


@pytest.mark.django_db(transaction=True)
def test_a_refusal_that_a_retry_cannot_fix_fails_the_job_at_once(gateway: FakeGateway) -> None:
    make_user(KNOWN)
    gateway.balance = 0  # CodeResult 103
    _reset(KNOWN)

    run_jobs_until_idle(["sms"])

    [job] = code_jobs()
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert len(gateway.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_a_retry_sends_nothing_once_the_code_expired(gateway: FakeGateway) -> None:
    make_user(KNOWN)
    gateway.http_status = 503
    challenge_id = _reset(KNOWN).json()["challenge_id"]
    run_jobs_until_idle(["sms"])
    OtpChallenge.objects.filter(pk=challenge_id).update(expires_at=timezone.now())
    gateway.http_status = 200
    make_retries_due()

    run_jobs_until_idle(["sms"])

    [job] = code_jobs()
    assert job["status"] == "succeeded"  # done: nothing left to send
    assert len(gateway.messages) == 1  # only the first, refused, try


@pytest.mark.django_db(transaction=True)
def test_a_resend_replaces_a_pending_retry(gateway: FakeGateway, settings: Any) -> None:
    settings.SMS_RESEND_SECONDS = 0
    make_user(KNOWN)
    gateway.http_status = 503
    challenge_id = _reset(KNOWN).json()["challenge_id"]
    run_jobs_until_idle(["sms"])
    gateway.http_status = 200
    resent = ApiClient().post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})
    assert resent.status_code == 202
    make_retries_due()

    run_jobs_until_idle(["sms"])

    assert [job["status"] for job in code_jobs()] == ["succeeded", "succeeded"]
    [code] = gateway_codes(gateway, KNOWN)[1:]  # one SMS: the older job stood down
    done = ApiClient().post(
        "/api/v1/auth/password/reset/verify",
        {"challenge_id": challenge_id, "code": code, "new_password": "N3w-pass!word"},
    )
    assert done.status_code == 204, done.content


def test_a_resend_for_a_number_of_another_account_texts_nothing(
    db: None, settings: Any, outbox_dir: Any
) -> None:
    """A phone change to a number another verified account holds is a decoy, and stays
    one when the code is asked again (the owner of that number gets nothing)."""
    settings.SMS_RESEND_SECONDS = 0
    make_user(UNKNOWN)
    api = ApiClient(sign_in(make_user(OWNER))[1].access_token)
    started = api.post("/api/v1/auth/phone/change", {"new_phone": UNKNOWN, "password": PASSWORD})
    assert deliver_sms() == [("accounts.send_code", "decoy")]
    resent = ApiClient().post(
        "/api/v1/auth/otp/resend", {"challenge_id": started.json()["challenge_id"]}
    )
    assert resent.status_code == 202
    assert deliver_sms() == [("accounts.send_code", "decoy")]
    assert not (outbox_dir / "sms.jsonl").exists()


def test_a_codes_sms_is_tried_about_eight_times_within_its_life(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2, 4, 8, ... seconds between tries, none longer than a quarter of the code's
    life, eight tries in all; a refusal a retry cannot fix is not tried again."""
    from procrastinate import jobs as procrastinate_jobs
    from procrastinate import utils

    from auth.sms import SmsError
    from auth.tasks import send_code

    settings.OTP_TTL_SECONDS = 300
    now = timezone.now()
    monkeypatch.setattr(utils, "utcnow", lambda: now)

    def wait_after(attempts: int, exc: Exception) -> float | None:
        job = procrastinate_jobs.Job(
            id=1,
            queue="sms",
            lock=None,
            queueing_lock=None,
            task_name=send_code.name,
            attempts=attempts,
        )
        decision = send_code.retry_strategy.get_retry_decision(exception=exc, job=job)
        if decision is None:
            return None
        return (decision.retry_at - now).total_seconds()

    transient = SmsError("SMS gateway HTTP 503", retryable=True)
    waits = [wait_after(attempts, transient) for attempts in range(8)]
    assert waits == [2, 4, 8, 16, 32, 64, 75, None]
    assert sum(w for w in waits if w) < settings.OTP_TTL_SECONDS
    assert wait_after(0, SmsError("SMS gateway CodeResult 103", retryable=False)) is None
