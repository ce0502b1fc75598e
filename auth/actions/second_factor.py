"""Authenticator app (TOTP) and recovery codes: setting them up, checking them, removing them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import NoReturn

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth import recovery_codes, sms_codes, totp
from auth.actions.challenges import reserve_account_attempt
from auth.actions.notices import (
    NOTICE_RECOVERY_CODES_REGENERATED,
    NOTICE_TOTP_DISABLED,
    NOTICE_TOTP_ENABLED,
    notify_owner,
)
from auth.models import DeviceSession, RecoveryCode, User
from auth.ratelimit import LockedOut, clear_failures, release_attempt, reserve_attempt
from backend.errors import ApiError, Conflict, RateLimited, field_error


def available_methods(user: User) -> tuple[str, ...]:
    methods = ["sms_otp"]
    if user.has_totp:
        methods.append("totp")
        if recovery_codes.remaining(user):
            methods.append("recovery_code")
    return tuple(methods)


def set_up_after(user: User, method: str, moment: dt.datetime) -> bool:
    """Whether `user`'s authenticator (`totp`) or recovery codes (`recovery_code`) were
    set up after `moment`.

    A session signed in within REAUTH_WINDOW_HOURS sets up either with nothing more
    (`/totp/enrol`, `/recovery-codes/regenerate`). So a factor set up after the session
    signed in proves nothing that session does not: it is no proof of control for what
    the session asks beyond itself (a phone change, a national identity link).
    """
    if method == "totp":
        return user.totp_confirmed_at is not None and user.totp_confirmed_at > moment
    if method == "recovery_code":
        return RecoveryCode.objects.filter(user=user, created_at__gt=moment).exists()
    return False


def _check_second_factor(user: User, method: str, code: str) -> bool:
    if method == "totp":
        return user.has_totp and totp.accept_code(user, code)
    if method == "recovery_code":
        return user.has_totp and use_recovery_code(user, code)
    return False


AUTHENTICATOR_SCOPE = "authenticator"


def verify_factor(user: User, method: str, code: str, *, code_key: str) -> None:
    """A TOTP or recovery code, counted against the account's lockout.

    The lockout (OTP_MAX_FAILURES in a row, then OTP_LOCKOUT_SECONDS) starts afresh
    after each lock, which alone would leave about a thousand guesses a day. The
    authenticator's own count is kept over OTP_FAILURE_WINDOW_SECONDS across lockouts:
    past OTP_MAX_AUTHENTICATOR_FAILURES the authenticator is refused until the
    window passes (429 `authenticator_locked`); codes sent by SMS and support still
    let the owner in. A right code gives its slot back but does not forget the
    failures, so a guesser gains nothing from the owner's sign-ins.
    """
    _count_and_check(
        sms_codes.user_account_key(user),
        code_key,
        lambda: _check_second_factor(user, method, code),
    )


def refuse_factor(account: str, *, code_key: str) -> NoReturn:
    """The authenticator step of a decoy (a challenge with no account behind it):
    counted against `account` exactly as `verify_factor` counts a real try, and
    refused, so repeated tries lock it as they would lock an account."""
    _count_and_check(account, code_key, lambda: False)
    raise sms_codes.invalid_code()  # never reached: the check always fails


def _count_and_check(account: str, code_key: str, check: Callable[[], bool]) -> None:
    window = settings.OTP_FAILURE_WINDOW_SECONDS
    cap = settings.OTP_MAX_AUTHENTICATOR_FAILURES
    try:
        slot = reserve_attempt(
            AUTHENTICATOR_SCOPE, account, limit=cap, lock_seconds=window, window_seconds=window
        )
    except LockedOut as exc:
        raise RateLimited(
            exc.retry_after,
            "authenticator_locked",
            _(
                "Too many wrong authenticator codes. Sign in with a code sent by SMS, "
                "or ask support."
            ),
        ) from exc

    def give_back() -> None:
        release_attempt(
            AUTHENTICATOR_SCOPE, account, attempt=slot, limit=cap, window_seconds=window
        )

    try:
        reserve_account_attempt(account, code_key)
    except ApiError:  # locked out or the code's tries spent: nothing was checked
        give_back()
        raise
    if not check():
        raise sms_codes.invalid_code()
    give_back()
    clear_failures(sms_codes.OTP_SCOPE, account)


# --- Recovery code rows ---------------------------------------------------------------


def generate_recovery_codes(user: User) -> list[str]:
    """Replace the user's codes with a new set and return it (the only time it is seen).

    The account row is locked first: under READ COMMITTED a second replacement's
    DELETE cannot see the codes a first one is inserting, and both sets would stay
    valid. Locked, the second waits and then deletes the first's set. This also
    serialises it with turning the authenticator on and off.
    """
    with transaction.atomic():
        _lock_account(user)
        return _replace_recovery_codes(user)


def _replace_recovery_codes(user: User) -> list[str]:
    """`generate_recovery_codes` once the caller holds the account row's lock."""
    codes = [recovery_codes.new_code() for _ in range(settings.RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        [RecoveryCode(user=user, code_hash=recovery_codes.hash_code(user, code)) for code in codes]
    )
    return codes


def _lock_account(user: User) -> bool:
    """Lock the account row until the transaction ends; False if it is gone."""
    return bool(list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk")))


def use_recovery_code(user: User, code: str) -> bool:
    """Spend one code; True only for the one request that spent it."""
    if not recovery_codes.normalise_code(code):
        return False
    spent = RecoveryCode.objects.filter(
        user=user, code_hash=recovery_codes.hash_code(user, code), used_at=None
    ).update(used_at=timezone.now())
    return spent == 1


def invalidate_recovery_codes(user: User) -> None:
    RecoveryCode.objects.filter(user=user).delete()


# --- Authenticator app -------------------------------------------------------------------


def start_totp_enrolment(*, user: User) -> tuple[str, str, str]:
    """A new secret (not active until confirmed): secret, otpauth URI, QR code PNG."""
    if user.has_totp:
        raise Conflict("totp_already_enabled", _("An authenticator app is already set up."))
    secret = totp.new_secret()
    with transaction.atomic():
        user.totp_secret = totp.encrypt_secret(secret)
        user.totp_last_step = None
        user.save(update_fields=["totp_secret", "totp_last_step"])
    uri = totp.provisioning_uri(user, secret)
    return secret, uri, totp.qr_png_base64(uri)


def confirm_totp(*, user: User, code: str) -> list[str]:
    """The first right code turns TOTP on and returns fresh recovery codes; the owner
    is told by SMS, committed with the change."""
    if user.has_totp:
        raise Conflict("totp_already_enabled", _("An authenticator app is already set up."))
    if not user.totp_secret:
        raise Conflict("totp_not_enrolled", _("Start the authenticator set-up first."))
    with transaction.atomic():
        verify_factor_enrolment(user, code)
        user.totp_confirmed_at = timezone.now()
        user.save(update_fields=["totp_confirmed_at"])
        codes = generate_recovery_codes(user)
        notify_owner(user, NOTICE_TOTP_ENABLED, purpose="notice.totp_enabled")
        return codes


def verify_factor_enrolment(user: User, code: str) -> None:
    account = sms_codes.user_account_key(user)
    try:
        reserve_attempt(
            sms_codes.OTP_SCOPE,
            account,
            limit=settings.OTP_MAX_FAILURES,
            lock_seconds=settings.OTP_LOCKOUT_SECONDS,
            window_seconds=settings.OTP_FAILURE_WINDOW_SECONDS,
        )
    except LockedOut as exc:
        raise sms_codes.locked(exc.retry_after) from exc
    if not totp.accept_code(user, code):
        raise sms_codes.invalid_code()
    clear_failures(sms_codes.OTP_SCOPE, account)


def _prove_owner(user: User, session: DeviceSession, code: str, *, code_key: str) -> None:
    """A fresh authenticator or recovery code (counted by `verify_factor`'s limits): the
    owner's proof, beyond `session`, for removing or replacing a factor.

    Recovery codes made after `session` signed in do not count while the authenticator
    is older: whoever holds the session may have made them (`set_up_after`), and would
    otherwise take the owner's factors away with the session alone."""
    method = "totp" if code.strip().isdigit() else "recovery_code"
    signed_in_at = session.authenticated_at
    if (
        method == "recovery_code"
        and set_up_after(user, "recovery_code", signed_in_at)
        and not set_up_after(user, "totp", signed_in_at)
    ):
        raise field_error(
            "code",
            "recovery_codes_newer_than_sign_in",
            _(
                "These recovery codes were made after you signed in on this device. Enter a "
                "code from your authenticator app, or sign in again first."
            ),
        )
    verify_factor(user, method, code, code_key=code_key)


def disable_totp(*, user: User, session: DeviceSession, code: str) -> None:
    """Needs a fresh second factor (`_prove_owner`); recovery codes go too. The owner
    is told by SMS, committed with the change."""
    if not user.has_totp:
        raise Conflict("totp_not_enabled", _("No authenticator app is set up."))
    with transaction.atomic():
        _prove_owner(user, session, code, code_key=f"disable:{user.pk}")
        user.totp_secret = ""  # nosec B105 # clears the secret
        user.totp_confirmed_at = None
        user.totp_last_step = None
        user.save(update_fields=["totp_secret", "totp_confirmed_at", "totp_last_step"])
        invalidate_recovery_codes(user)
        notify_owner(user, NOTICE_TOTP_DISABLED, purpose="notice.totp_disabled")


def regenerate_recovery_codes(*, user: User, session: DeviceSession, code: str) -> list[str]:
    """A new set replacing the old, with a fresh second factor (`_prove_owner`): the
    session alone would let whoever holds it destroy the owner's codes. The owner is
    told by SMS, committed with the change."""
    if not user.has_totp:
        raise Conflict("totp_not_enabled", _("Set up an authenticator app first."))
    with transaction.atomic():
        # Locked and read again in one statement, the lock held to the end (as in
        # generate_recovery_codes): an authenticator removed meanwhile takes its
        # recovery codes with it, and none may come back.
        confirmed = (
            User.objects.select_for_update()
            .filter(pk=user.pk)
            .values_list("totp_confirmed_at", flat=True)
            .first()
        )
        if confirmed is None:
            raise Conflict("totp_not_enabled", _("Set up an authenticator app first."))
        _prove_owner(user, session, code, code_key=f"regenerate:{user.pk}")
        codes = _replace_recovery_codes(user)
        notify_owner(
            user, NOTICE_RECOVERY_CODES_REGENERATED, purpose="notice.recovery_codes_regenerated"
        )
        return codes
