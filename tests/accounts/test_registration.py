"""Sign-up: codes by SMS, their expiry, single use, purpose binding, neutral answers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auth.actions import challenges
from auth.models import DeviceSession, OtpChallenge, User
from tests.accounts.conftest import PASSWORD, all_sms, device, last_code, register, sms_to
from tests.conftest import make_user

PHONE = "+84912345678"


def _verify(api, challenge_id: str, code: str, **extra):
    return api.post(
        "/api/v1/auth/register/verify",
        {"challenge_id": challenge_id, "code": code, **device(**extra)},
    )


def test_register_texts_a_six_digit_code_and_creates_a_pending_account(api, db) -> None:
    response = register(api, "0912345678")
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"challenge_id", "expires_in", "resend_after"}
    assert body["expires_in"] == 300
    assert body["resend_after"] == 60
    messages = sms_to(PHONE)
    assert len(messages) == 1
    assert messages[0]["purpose"] == "otp.register"
    # Vietnamese (no Accept-Language), without diacritics: one GSM-7 segment.
    assert "ma xac thuc dang ky" in messages[0]["text"]
    code = last_code(PHONE)
    assert len(code) == 6
    user = User.objects.get(phone=PHONE)
    assert user.verification_level == User.Level.UNVERIFIED
    assert user.phone_verified_at is None
    challenge = OtpChallenge.objects.get(pk=body["challenge_id"])
    assert code not in challenge.code_hash  # stored as an HMAC, never in clear
    assert len(challenge.code_hash) == 64


def test_verifying_the_code_activates_the_account_and_signs_in(api, db) -> None:
    challenge_id = register(api).json()["challenge_id"]
    response = _verify(api, challenge_id, last_code(PHONE), device_id="dev-1")
    assert response.status_code == 201
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    user = User.objects.get(phone=PHONE)
    assert user.phone_verified_at is not None
    assert user.verification_level == User.Level.PHONE
    session = DeviceSession.objects.get(user=user)
    assert (session.device_id, session.name, session.platform, session.app_version) == (
        "dev-1",
        "Pixel 8",
        "android",
        "1.4.0",
    )
    assert session.ip == "127.0.0.1"
    me = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["phone"] == PHONE


def test_weak_password_is_refused_with_field_errors_and_no_sms(api, db) -> None:
    response = register(api, password="12345678")
    assert response.status_code == 422
    codes = {detail["code"] for detail in response.json()["details"]}
    # "12345678" is also most of the number 0912345678.
    assert codes == {"password_too_common", "password_entirely_numeric", "password_too_similar"}
    assert {(d["field"], d["location"]) for d in response.json()["details"]} == {
        ("password", "body")
    }
    assert all_sms() == []
    assert not User.objects.filter(phone=PHONE).exists()


def test_register_answer_is_the_same_for_an_existing_verified_number(api, db) -> None:
    existing = make_user(PHONE)
    fresh = register(api, "0987654321")
    taken = register(api, "0912345678")
    assert fresh.status_code == taken.status_code == 202
    assert set(fresh.json()) == set(taken.json())
    assert fresh.json()["expires_in"] == taken.json()["expires_in"]
    assert fresh.json()["resend_after"] == taken.json()["resend_after"]
    # The owner gets a notice, never a code, and the account is untouched.
    notice = sms_to(PHONE)
    assert [m["purpose"] for m in notice] == ["notice.already_registered"]
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD)
    assert existing.full_name == "Lê Thị Hoa"
    # Its challenge can never be completed.
    response = _verify(api, taken.json()["challenge_id"], "000000")
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_code"


def test_code_is_accepted_just_before_five_minutes(api, db, monkeypatch) -> None:
    challenge_id = register(api).json()["challenge_id"]
    code = last_code(PHONE)
    sent_at = OtpChallenge.objects.get(pk=challenge_id).code_sent_at
    monkeypatch.setattr(timezone, "now", lambda: sent_at + dt.timedelta(seconds=299))
    assert _verify(api, challenge_id, code).status_code == 201


def test_code_is_refused_just_after_five_minutes(api, db, monkeypatch) -> None:
    challenge_id = register(api).json()["challenge_id"]
    code = last_code(PHONE)
    sent_at = OtpChallenge.objects.get(pk=challenge_id).code_sent_at
    monkeypatch.setattr(timezone, "now", lambda: sent_at + dt.timedelta(seconds=300))
    response = _verify(api, challenge_id, code)
    assert response.status_code == 422
    assert response.json()["code"] == "code_expired"
    assert User.objects.get(phone=PHONE).phone_verified_at is None


def test_code_works_only_once(api, db) -> None:
    challenge_id = register(api).json()["challenge_id"]
    code = last_code(PHONE)
    assert _verify(api, challenge_id, code).status_code == 201
    again = _verify(api, challenge_id, code)
    assert again.status_code == 422
    assert again.json()["code"] == "invalid_code"
    assert DeviceSession.objects.count() == 1


def test_a_number_verified_meanwhile_makes_the_code_wrong(api, db) -> None:
    # Between the code and its use, the pending account's number was proven
    # elsewhere (here: written directly): the code no longer activates anything.
    challenge_id = register(api).json()["challenge_id"]
    verified_at = timezone.now() - dt.timedelta(minutes=1)
    User.objects.filter(phone=PHONE).update(phone_verified_at=verified_at)
    response = _verify(api, challenge_id, last_code(PHONE))
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_code"
    assert User.objects.get(phone=PHONE).phone_verified_at == verified_at
    assert not DeviceSession.objects.exists()
    # The failed try rolled back with the rest: the challenge is not spent.
    assert OtpChallenge.objects.get(pk=challenge_id).consumed_at is None


def test_a_code_of_another_flow_never_completes_registration(api, db) -> None:
    # A verified account asks for a password reset: its code and challenge are
    # for `reset_password` and must not verify a sign-up.
    make_user("+84987654321")
    reset = api.post("/api/v1/auth/password/reset", {"phone": "0987654321"}).json()
    response = _verify(api, reset["challenge_id"], last_code("+84987654321"))
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_code"
    assert OtpChallenge.objects.get(pk=reset["challenge_id"]).consumed_at is None


def test_a_code_is_bound_to_its_phone(api, db, monkeypatch) -> None:
    codes = iter(["111111", "222222"])
    monkeypatch.setattr("auth.sms_codes.new_code", lambda: next(codes))
    first = register(api, "0912345678").json()["challenge_id"]
    register(api, "0987654321")
    response = _verify(api, first, last_code("+84987654321"))
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_code"
    assert _verify(api, first, "111111").status_code == 201


def test_resend_replaces_the_code(api, db, settings) -> None:
    settings.SMS_RESEND_SECONDS = 0
    challenge_id = register(api).json()["challenge_id"]
    first = last_code(PHONE)
    response = api.post("/api/v1/auth/otp/resend", {"challenge_id": challenge_id})
    assert response.status_code == 202
    assert response.json()["challenge_id"] == challenge_id
    second = last_code(PHONE)
    assert len(sms_to(PHONE)) == 2
    if first != second:
        assert _verify(api, challenge_id, first).json()["code"] == "invalid_code"
    assert _verify(api, challenge_id, second).status_code == 201


def test_registering_again_before_verifying_updates_the_pending_account(api, db, settings) -> None:
    settings.SMS_RESEND_SECONDS = 0
    register(api, full_name="Tên cũ")
    challenge_id = register(api, full_name="Tên mới", password="An0ther-pass!word").json()[
        "challenge_id"
    ]
    assert User.objects.filter(phone=PHONE).count() == 1
    assert _verify(api, challenge_id, last_code(PHONE)).status_code == 201
    user = User.objects.get(phone=PHONE)
    assert user.full_name == "Tên mới"
    assert user.check_password("An0ther-pass!word")


@pytest.mark.django_db(transaction=True)
def test_only_the_code_issuing_transaction_skips_the_disk_flush() -> None:
    def synchronous_commit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return str(cursor.fetchone()[0])

    with transaction.atomic():
        challenges.commit_without_waiting_for_disk()
        assert synchronous_commit() == "off"
    assert synchronous_commit() == "on"
    challenges.commit_without_waiting_for_disk()  # outside a transaction: nothing to relax
    assert synchronous_commit() == "on"


@pytest.mark.django_db(transaction=True)
def test_a_resent_code_commits_without_the_disk_flush_and_no_extra_statement(
    api, settings, monkeypatch
) -> None:
    """The resend's row read relaxes its own commit (no SET LOCAL of its own); the
    new code's request and its job are still committed, and the next transaction is
    durable again."""
    settings.SMS_RESEND_SECONDS = 0
    challenge_id = register(api).json()["challenge_id"]
    seen: list[str] = []
    real_defer = challenges.defer

    def look_and_defer(*args, **kwargs) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            seen.append(str(cursor.fetchone()[0]))
        real_defer(*args, **kwargs)

    monkeypatch.setattr(challenges, "defer", look_and_defer)
    with CaptureQueriesContext(connection) as queries:
        challenges.resend_code(challenge_id=challenge_id, ip="127.0.0.1")

    assert seen == ["off"]
    statements = [query["sql"].split()[0] for query in queries.captured_queries]
    # The locked read (which relaxes the commit), the new request, our SHOW, the job
    # (procrastinate's defer function): no SET LOCAL.
    assert statements == ["BEGIN", "SELECT", "UPDATE", "SHOW", "SELECT", "COMMIT"], statements
    assert "procrastinate_defer_jobs" in queries.captured_queries[4]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert _verify(api, challenge_id, last_code(PHONE)).status_code == 201
