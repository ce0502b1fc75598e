"""Account changes that race with themselves: a double tap on Register, two
regenerations of recovery codes at once, wrong passwords sent all at once.

Each race is made deterministic: a `connection.execute_wrapper` hook holds one
request at the racy statement until the other has passed the point where it
used to slip through.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyotp
import pytest
from django.db import connection
from django.utils import timezone

from auth import totp
from auth.actions import accounts, second_factor
from auth.actions.sign_in import check_password_with_limits
from auth.models import RecoveryCode, User
from backend.errors import RateLimited
from tests.accounts.staff import enable_real_totp, make_citizen
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+84912345678"
WAIT = 20  # seconds: only a safety net for a broken test, never reached when it works


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@contextmanager
def hook(before: Callable[[str], None], after: Callable[[str], None]) -> Iterator[None]:
    """Call `before(sql)` and `after(sql)` around every statement of this thread."""

    def wrapper(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        before(sql)
        try:
            return execute(sql, params, many, context)
        finally:
            after(sql)

    with connection.execute_wrapper(wrapper):
        yield


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except Exception as exc:
            result.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_a_double_tap_on_register_with_a_new_number_makes_one_account() -> None:
    users = connection.ops.quote_name(User._meta.db_table)
    first_at_insert = threading.Event()
    second_past_its_read = threading.Event()

    def sign_up(name: str) -> Any:
        return accounts.register(
            phone="0912345678", full_name=name, password="Str0ng-pass!word", ip="203.0.113.9"
        )

    def first() -> Any:
        def before(sql: str) -> None:
            if sql.startswith(f"INSERT INTO {users}"):
                first_at_insert.set()
                second_past_its_read.wait(WAIT)

        with hook(before, lambda sql: None):
            return sign_up("Lần Một")

    def second() -> Any:
        # Let the first insert once this request has read the number's account (the
        # old race) or is about to wait for the number's lock (the fix).
        def before(sql: str) -> None:
            if "pg_advisory_xact_lock" in sql:
                second_past_its_read.set()

        def after(sql: str) -> None:
            if sql.startswith("SELECT") and f"FROM {users}" in sql:
                second_past_its_read.set()

        with hook(before, after):
            return sign_up("Lần Hai")

    first_thread, first_result = in_thread(first)
    assert first_at_insert.wait(WAIT)
    second_thread, second_result = in_thread(second)
    first_thread.join(WAIT)
    second_thread.join(WAIT)

    assert not isinstance(first_result[0], Exception), first_result
    # The twin found the pending sign-up and was told to wait before another code.
    assert isinstance(second_result[0], RateLimited), second_result
    assert second_result[0].code == "otp_resend_too_soon"
    assert list(User.objects.filter(phone=PHONE).values_list("full_name", flat=True)) == ["Lần Một"]


def test_two_regenerations_of_recovery_codes_at_once_leave_one_set() -> None:
    citizen = make_citizen()
    RecoveryCode.objects.filter(user=citizen).delete()  # the first set, or none left
    secret = enable_real_totp(citizen)
    session, _ = sign_in(citizen)
    # Each proves it with a code of its own step: the first this step's, the second
    # the next one's (a step is accepted once, in order).
    now = timezone.now()
    first_code = pyotp.TOTP(secret).at(now)
    second_code = pyotp.TOTP(secret).at(now + dt.timedelta(seconds=totp.STEP_SECONDS))
    users = connection.ops.quote_name(User._meta.db_table)
    codes = connection.ops.quote_name(RecoveryCode._meta.db_table)
    first_at_insert = threading.Event()
    second_past_its_delete = threading.Event()

    def first() -> Any:
        def before(sql: str) -> None:
            if sql.startswith(f"INSERT INTO {codes}"):
                first_at_insert.set()
                second_past_its_delete.wait(WAIT)

        with hook(before, lambda sql: None):
            return second_factor.regenerate_recovery_codes(
                user=citizen, session=session, code=first_code
            )

    def second() -> Any:
        # Let the first insert once this request has deleted the codes it can see
        # (the old race) or is about to wait for the account's lock (the fix).
        def before(sql: str) -> None:
            if f"FROM {users}" in sql and sql.rstrip().endswith("FOR UPDATE"):
                second_past_its_delete.set()

        def after(sql: str) -> None:
            if sql.startswith("DELETE FROM") and codes in sql:
                second_past_its_delete.set()

        with hook(before, after):
            return second_factor.regenerate_recovery_codes(
                user=citizen, session=session, code=second_code
            )

    first_thread, first_result = in_thread(first)
    assert first_at_insert.wait(WAIT)
    second_thread, second_result = in_thread(second)
    first_thread.join(WAIT)
    second_thread.join(WAIT)

    first_codes, second_codes = first_result[0], second_result[0]
    assert isinstance(first_codes, list), first_result
    assert isinstance(second_codes, list), second_result
    assert RecoveryCode.objects.filter(user=citizen, used_at=None).count() == len(second_codes)
    assert not second_factor.use_recovery_code(citizen, first_codes[0])
    assert second_factor.use_recovery_code(citizen, second_codes[0])


def test_wrong_passwords_sent_at_once_from_one_address_stay_within_its_limit(
    settings: Any,
) -> None:
    settings.LOGIN_MAX_FAILURES_PER_IP_PER_HOUR = 3
    attempts = 10
    users = connection.ops.quote_name(User._meta.db_table)
    arrived = threading.Condition()
    at_the_hash_or_done = [0]

    def one_more() -> None:
        with arrived:
            at_the_hash_or_done[0] += 1
            arrived.notify_all()

    def guess(index: int) -> Any:
        # Each request that gets as far as reading the account waits there until
        # every request has either got as far or been answered: none of them has
        # counted its failure yet, which is when the old check let them all through.
        def before(sql: str) -> None:
            if sql.startswith("SELECT") and f"FROM {users}" in sql:
                one_more()
                with arrived:
                    arrived.wait_for(lambda: at_the_hash_or_done[0] >= attempts, WAIT)

        try:
            with hook(before, lambda sql: None):
                return check_password_with_limits(
                    f"+849123400{index:02d}", "Wrong-pass!word1", "203.0.113.50"
                )
        except RateLimited as exc:
            one_more()
            return exc

    threads = [in_thread(lambda index=index: guess(index)) for index in range(attempts)]
    for thread, _ in threads:
        thread.join(WAIT)
    outcomes = [result[0] for _, result in threads]

    checked = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(checked) == 3, outcomes
    assert all(check.user is None for check in checked)
    assert len(refused) == attempts - 3
    assert {exc.code for exc in refused} == {"login_locked"}


def test_a_right_password_gives_its_slot_back(settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES_PER_IP_PER_HOUR = 3
    owner = make_citizen()
    ip = "203.0.113.51"
    for _ in range(5):
        assert check_password_with_limits(owner.phone, "Str0ng-pass!word", ip).user == owner
    assert check_password_with_limits("+84912340001", "Wrong-pass!word1", ip).user is None
    assert check_password_with_limits(owner.phone, "Str0ng-pass!word", ip).user == owner
    assert check_password_with_limits("+84912340002", "Wrong-pass!word1", ip).user is None
    assert check_password_with_limits("+84912340003", "Wrong-pass!word1", ip).user is None
    with pytest.raises(RateLimited):
        check_password_with_limits(owner.phone, "Str0ng-pass!word", ip)
