"""Password reset by SMS code: neutral answers, new password, every session ends."""

from __future__ import annotations

from auth.models import DeviceSession
from auth.sms import read_outbox
from tests.accounts.conftest import last_code, sms_to
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
    assert [m["to"] for m in read_outbox()] == [PHONE]
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
