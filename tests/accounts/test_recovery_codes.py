import datetime as dt

import pytest
from django.utils import timezone

from auth import recovery_codes
from auth.actions.second_factor import (
    generate_recovery_codes,
    regenerate_recovery_codes,
    use_recovery_code,
)
from auth.models import DeviceSession, RecoveryCode, User
from backend.errors import Conflict
from tests.conftest import ApiClient, sign_in


def _with_totp(user) -> None:
    user.totp_confirmed_at = timezone.now()
    user.save()


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


def test_regenerate_replaces_every_code(user, user_api) -> None:
    _with_totp(user)
    old = generate_recovery_codes(user)
    response = user_api.post("/api/v1/auth/recovery-codes/regenerate")
    assert response.status_code == 200
    new = response.json()["codes"]
    assert len(new) == 10
    assert not set(old) & set(new)
    assert not use_recovery_code(user, old[0])
    assert use_recovery_code(user, new[0])


def test_regenerate_needs_recent_authentication(user) -> None:
    _with_totp(user)
    old = generate_recovery_codes(user)
    session, tokens = sign_in(user)
    DeviceSession.objects.filter(pk=session.pk).update(
        authenticated_at=timezone.now() - dt.timedelta(hours=25)
    )
    response = ApiClient(tokens.access_token).post("/api/v1/auth/recovery-codes/regenerate")
    assert response.status_code == 401
    assert response.json()["code"] == "reauth_required"
    assert use_recovery_code(user, old[0])


def test_no_codes_come_back_after_the_authenticator_was_removed_meanwhile(user) -> None:
    _with_totp(user)
    # Another request turned the authenticator off after this one read the account.
    User.objects.filter(pk=user.pk).update(totp_confirmed_at=None, totp_secret="")
    with pytest.raises(Conflict) as refused:
        regenerate_recovery_codes(user=user)
    assert refused.value.code == "totp_not_enabled"
    assert not RecoveryCode.objects.filter(user=user).exists()


def test_regenerating_locks_the_account_row_once_and_reads_it_with_the_lock(user) -> None:
    """One locking read checks that the authenticator is still on and holds the row
    to the end (it was locked, read, and locked again: three statements for one)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _with_totp(user)
    old = generate_recovery_codes(user)
    with CaptureQueriesContext(connection) as queries:
        new = regenerate_recovery_codes(user=user)

    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert len(reads) == 1, reads
    assert reads[0].endswith("FOR UPDATE")
    assert "totp_confirmed_at" in reads[0]
    assert not use_recovery_code(user, old[0])
    assert use_recovery_code(user, new[0])
