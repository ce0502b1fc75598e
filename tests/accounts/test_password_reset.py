"""Password reset by SMS code: neutral answers, new password, every session ends."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from auth.models import DeviceSession, OtpChallenge, User
from tests.accounts.conftest import all_sms, last_code, sms_to
from tests.conftest import ApiClient, make_user, sign_in

PHONE = "+84912345678"


def _reset(api, challenge_id: str, code: str, password: str = "N3w-pass!word"):
    return api.post(
        "/api/v1/auth/password/reset/verify",
        {"challenge_id": challenge_id, "code": code, "new_password": password},
    )


def test_reset_request_answers_the_same_for_known_and_unknown_numbers(api, db) -> None:
    make_user(PHONE)
    known = api.post("/api/v1/auth/password/reset", {"phone": "0912345678"})
    unknown = api.post("/api/v1/auth/password/reset", {"phone": "0987654321"})
    assert known.status_code == unknown.status_code == 202
    assert set(known.json()) == set(unknown.json())
    assert known.json()["expires_in"] == unknown.json()["expires_in"]
    # Only the real account gets a text.
    assert [m["to"] for m in all_sms()] == [PHONE]
    assert sms_to(PHONE)[0]["purpose"] == "otp.reset_password"
    failed = _reset(api, unknown.json()["challenge_id"], "123456")
    assert failed.status_code == 422
    assert failed.json()["code"] == "invalid_code"


def test_unknown_numbers_hit_the_same_resend_limit(api, db) -> None:
    make_user(PHONE)
    api.post("/api/v1/auth/password/reset", {"phone": "0912345678"})
    api.post("/api/v1/auth/password/reset", {"phone": "0987654321"})
    known = api.post("/api/v1/auth/password/reset", {"phone": "0912345678"})
    unknown = api.post("/api/v1/auth/password/reset", {"phone": "0987654321"})
    assert known.status_code == unknown.status_code == 429
    assert known.json()["code"] == unknown.json()["code"] == "otp_resend_too_soon"


def test_reset_sets_the_password_and_revokes_every_session(api, db) -> None:
    user = make_user(PHONE)
    _, first = sign_in(user)
    _, second = sign_in(user)
    challenge_id = api.post("/api/v1/auth/password/reset", {"phone": PHONE}).json()["challenge_id"]
    assert _reset(api, challenge_id, last_code(PHONE)).status_code == 204
    user.refresh_from_db()
    assert user.check_password("N3w-pass!word")
    assert DeviceSession.objects.filter(user=user, revoked_at=None).count() == 0
    assert set(DeviceSession.objects.values_list("revoked_reason", flat=True)) == {"password_reset"}
    for tokens in (first, second):
        assert ApiClient(tokens.access_token).get("/api/v1/auth/me").status_code == 401


def test_weak_new_password_is_refused_and_the_code_stays_usable(api, db) -> None:
    user = make_user(PHONE)
    challenge_id = api.post("/api/v1/auth/password/reset", {"phone": PHONE}).json()["challenge_id"]
    weak = _reset(api, challenge_id, last_code(PHONE), "password")
    assert weak.status_code == 422
    assert weak.json()["details"][0]["field"] == "new_password"
    assert weak.json()["details"][0]["code"] == "password_too_common"
    assert _reset(api, challenge_id, last_code(PHONE)).status_code == 204
    user.refresh_from_db()
    assert user.check_password("N3w-pass!word")


LIKE_THE_NUMBER = "+84912345678x"


def _two_challenges(api) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A reset challenge for a registered number and one for an unknown number."""
    make_user(PHONE, full_name="Trần Thị Mai")
    known = api.post("/api/v1/auth/password/reset", {"phone": "0912345678"})
    unknown = api.post("/api/v1/auth/password/reset", {"phone": "0987654321"})
    return known.json()["challenge_id"], unknown.json()["challenge_id"]


def test_a_wrong_code_answers_the_same_whatever_the_password_and_the_number(api, db) -> None:
    known, unknown = _two_challenges(api)
    for password in (LIKE_THE_NUMBER, "Trần Thị Mai", "tranthimai"):
        for challenge_id in (known, unknown):
            response = _reset(api, challenge_id, "000000", password)
            assert response.status_code == 422
            assert response.json()["code"] == "invalid_code"


def test_name_guesses_on_a_reset_challenge_are_counted_as_wrong_codes(api, db, settings) -> None:
    settings.OTP_MAX_ATTEMPTS_PER_CODE = 5
    known, _ = _two_challenges(api)
    answers = [
        _reset(api, known, "000000", guess).json()["code"]
        for guess in ("Trần Thị Mai", "tranthimai", "Nguyễn Văn An", "nguyenvanan", "lan-2026")
    ]
    assert answers == ["invalid_code"] * settings.OTP_MAX_ATTEMPTS_PER_CODE
    over = _reset(api, known, "000000", "Trần Thị Mai")
    assert over.status_code == 422
    assert over.json()["code"] == "code_attempts_exceeded"


def test_a_spent_or_expired_reset_challenge_never_compares_the_password(api, db) -> None:
    user = make_user(PHONE, full_name="Trần Thị Mai")
    challenge_id = api.post("/api/v1/auth/password/reset", {"phone": PHONE}).json()["challenge_id"]
    assert _reset(api, challenge_id, last_code(PHONE)).status_code == 204
    spent = _reset(api, challenge_id, "000000", LIKE_THE_NUMBER)
    assert spent.status_code == 422
    assert spent.json()["code"] == "invalid_code"

    OtpChallenge.objects.filter(pk=challenge_id).update(
        consumed_at=None, expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    expired = _reset(api, challenge_id, "000000", LIKE_THE_NUMBER)
    assert expired.status_code == 422
    assert expired.json()["code"] == "code_expired"
    user.refresh_from_db()
    assert user.check_password("N3w-pass!word")


def test_a_sign_in_challenge_cannot_be_used_to_test_a_password(api, db) -> None:
    make_user(PHONE, full_name="Trần Thị Mai")
    challenge = OtpChallenge.objects.create(
        purpose=OtpChallenge.Purpose.REGISTER,
        phone=PHONE,
        user=User.objects.get(phone=PHONE),
        expires_at=timezone.now() + dt.timedelta(minutes=5),
    )
    response = _reset(api, str(challenge.pk), "000000", LIKE_THE_NUMBER)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_code"


def test_a_password_like_the_account_after_the_right_code_keeps_the_code_usable(api, db) -> None:
    user = make_user(PHONE, full_name="Trần Thị Mai")
    challenge_id = api.post("/api/v1/auth/password/reset", {"phone": PHONE}).json()["challenge_id"]
    similar = _reset(api, challenge_id, last_code(PHONE), LIKE_THE_NUMBER)
    assert similar.status_code == 422
    assert similar.json()["details"][0]["code"] == "password_too_similar"
    assert OtpChallenge.objects.get(pk=challenge_id).consumed_at is None
    assert _reset(api, challenge_id, last_code(PHONE)).status_code == 204
    user.refresh_from_db()
    assert user.check_password("N3w-pass!word")
