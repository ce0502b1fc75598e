import datetime as dt

import pyotp
import pytest
from django.utils import timezone

from auth import recovery_codes, sms_codes
from auth.actions.second_factor import (
    AUTHENTICATOR_SCOPE,
    generate_recovery_codes,
    regenerate_recovery_codes,
    use_recovery_code,
)
from auth.models import DeviceSession, RecoveryCode, User
from auth.ratelimit import failure_count
from backend.errors import Conflict
from tests.accounts.staff import enable_real_totp
from tests.conftest import ApiClient, api_as, sign_in

REGENERATE = "/api/v1/auth/recovery-codes/regenerate"


def test_recovery_codes_are_stored_hashed(user) -> None:
    codes = generate_recovery_codes(user)
    stored = set(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
    assert len(stored) == 10
    for code in codes:
        assert code not in stored
        assert code.replace("-", "") not in "".join(stored)


def test_each_recovery_code_works_once(user) -> None:
    codes = generate_recovery_codes(user)
    assert use_recovery_code(user, codes[0])
    assert not use_recovery_code(user, codes[0])
    assert recovery_codes.remaining(user) == 9


def test_a_code_of_another_user_does_not_work(user) -> None:
    from tests.conftest import make_user

    other = make_user()
    codes = generate_recovery_codes(other)
    assert not use_recovery_code(user, codes[0])
    assert recovery_codes.remaining(other) == 10


def test_regenerate_with_an_authenticator_code_replaces_every_code(user) -> None:
    secret = enable_real_totp(user)
    old = generate_recovery_codes(user)
    response = api_as(user).post(REGENERATE, {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200, response
    new = response.json()["codes"]
    assert len(new) == 10
    assert not set(old) & set(new)
    assert not use_recovery_code(user, old[0])
    assert use_recovery_code(user, new[0])


def test_regenerate_with_a_recovery_code_older_than_the_sign_in_replaces_them(user) -> None:
    enable_real_totp(user, confirmed_at=timezone.now() - dt.timedelta(days=3))
    old = generate_recovery_codes(user)
    RecoveryCode.objects.update(created_at=timezone.now() - dt.timedelta(days=3))
    response = api_as(user).post(REGENERATE, {"code": old[0]})
    assert response.status_code == 200, response
    assert not use_recovery_code(user, old[1])
    assert use_recovery_code(user, response.json()["codes"][0])


def test_regenerate_without_a_code_is_refused_and_replaces_nothing(user) -> None:
    enable_real_totp(user)
    old = generate_recovery_codes(user)
    response = api_as(user).post(REGENERATE, {})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [("code", "missing")]
    assert RecoveryCode.objects.filter(user=user, used_at=None).count() == 10
    assert use_recovery_code(user, old[0])


def test_a_wrong_code_is_counted_and_replaces_nothing(user) -> None:
    secret = enable_real_totp(user)
    old = generate_recovery_codes(user)
    wrong = f"{(int(pyotp.TOTP(secret).now()) + 1) % 10**6:06d}"
    response = api_as(user).post(REGENERATE, {"code": wrong})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_code"
    account = sms_codes.user_account_key(user)
    assert failure_count(AUTHENTICATOR_SCOPE, account) == 1
    assert failure_count(sms_codes.OTP_SCOPE, account) == 1
    assert RecoveryCode.objects.filter(user=user, used_at=None).count() == 10
    assert use_recovery_code(user, old[0])


def test_guessing_the_code_locks_regeneration_like_any_code(user, settings) -> None:
    settings.OTP_MAX_FAILURES = 2
    secret = enable_real_totp(user)
    old = generate_recovery_codes(user)
    api = api_as(user)
    wrong = f"{(int(pyotp.TOTP(secret).now()) + 1) % 10**6:06d}"
    assert [api.post(REGENERATE, {"code": wrong}).status_code for _ in range(2)] == [422, 422]
    locked = api.post(REGENERATE, {"code": pyotp.TOTP(secret).now()})
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_failed_codes"
    assert use_recovery_code(user, old[0])


def test_recovery_codes_made_after_the_sign_in_do_not_replace_themselves(user) -> None:
    enable_real_totp(user, confirmed_at=timezone.now() - dt.timedelta(days=3))
    api = api_as(user)
    newer = generate_recovery_codes(user)  # made after this session signed in
    response = api.post(REGENERATE, {"code": newer[0]})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "code"
    assert response.json()["details"][0]["code"] == "recovery_codes_newer_than_sign_in"
    assert RecoveryCode.objects.filter(user=user, used_at=None).count() == 10


def test_regenerate_needs_recent_authentication(user) -> None:
    secret = enable_real_totp(user)
    old = generate_recovery_codes(user)
    session, tokens = sign_in(user)
    DeviceSession.objects.filter(pk=session.pk).update(
        authenticated_at=timezone.now() - dt.timedelta(hours=25)
    )
    response = ApiClient(tokens.access_token).post(REGENERATE, {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 401
    assert response.json()["code"] == "reauth_required"
    assert use_recovery_code(user, old[0])


def test_no_codes_come_back_after_the_authenticator_was_removed_meanwhile(user) -> None:
    secret = enable_real_totp(user)
    session, _ = sign_in(user)
    # Another request turned the authenticator off after this one read the account.
    User.objects.filter(pk=user.pk).update(totp_confirmed_at=None, totp_secret="")
    with pytest.raises(Conflict) as refused:
        regenerate_recovery_codes(user=user, session=session, code=pyotp.TOTP(secret).now())
    assert refused.value.code == "totp_not_enabled"
    assert not RecoveryCode.objects.filter(user=user).exists()


def test_regenerating_locks_the_account_row_once_and_reads_it_with_the_lock(user) -> None:
    """One locking read checks that the authenticator is still on and holds the row
    to the end (it was locked, read, and locked again: three statements for one)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    secret = enable_real_totp(user)
    old = generate_recovery_codes(user)
    session, _ = sign_in(user)
    with CaptureQueriesContext(connection) as queries:
        new = regenerate_recovery_codes(user=user, session=session, code=pyotp.TOTP(secret).now())

    # (The owner's notice is queued by a SELECT of procrastinate's: not a read.)
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and "procrastinate" not in q["sql"]
    ]
    assert len(reads) == 1, reads
    assert reads[0].endswith("FOR UPDATE")
    assert "totp_confirmed_at" in reads[0]
    assert not use_recovery_code(user, old[0])
    assert use_recovery_code(user, new[0])
