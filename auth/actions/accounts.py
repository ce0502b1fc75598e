"""The account itself: sign-up, profile, citizen ID, phone number, passwords.

Each function is one state change in one transaction. Signing in is in
auth/actions/sign_in.py, the SMS code challenges these flows use in
auth/actions/challenges.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth import sms_codes
from auth.actions import citizen_id_conflicts
from auth.actions.challenges import issue_code, new_challenge, verify_code
from auth.actions.notices import NOTICE_PASSWORD_CHANGED, NOTICE_PASSWORD_RESET, notify_owner
from auth.actions.phone_numbers import free_phone_number, lock_phone_number
from auth.actions.second_factor import set_up_after, verify_factor
from auth.actions.sessions import end_sign_ins
from auth.actions.sign_in import (
    DeviceInfo,
    check_password_with_limits,
    clear_client_failures,
    sign_device_in,
)
from auth.citizen_ids import validate_citizen_id
from auth.models import AuthMethod, CitizenIdConflict, DeviceSession, OtpChallenge, User
from auth.phone import mask_phone, normalise_phone
from auth.ratelimit import LockedOut, reserve_attempt
from auth.sms import SmsTemplate
from auth.tokens import TokenPair
from backend.errors import Conflict, RateLimited, Unprocessable, field_detail, field_error
from backend.middleware import rate_limit_address

logger = logging.getLogger(__name__)

# To the old number, in the account's language.
NOTICE_PHONE_CHANGED = SmsTemplate(
    _(
        "The phone number of your Public Services account was changed to the number ending "
        "{last4}. If this was not you, contact support now."
    )
)


def _password_errors(password: str, user: User, field: str = "password") -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise Unprocessable(
            details=[
                field_detail(
                    field, error.code or "invalid", " ".join(str(m) for m in error.messages)
                )
                for error in exc.error_list
            ]
        ) from exc


# --- Sign-up ------------------------------------------------------------------------


def register(
    *, phone: str, full_name: str, password: str, ip: str, language: str | None = None
) -> OtpChallenge:
    """Start a sign-up. The answer never tells whether the number already has an account.

    A new or still unverified number gets a pending account and a code; a verified
    number gets a notice SMS and a challenge that no code can complete.

    `language` is the request's: the new (or rewritten pending) account's `language`
    when it is one the app speaks, vi otherwise, so its SMS notices and pushes are in
    it before the app ever calls `PATCH /me`. An account in use keeps its own.
    """
    e164 = normalise_phone(phone)
    full_name = full_name.strip()
    if not full_name:
        raise field_error("full_name", "required", _("This field is required."))
    with transaction.atomic():
        # A twin tap waits here for the first to commit, then reads its account.
        lock_phone_number(e164)
        existing = User.objects.select_for_update().filter(phone=e164).first()
        candidate = existing if existing and _pending_sign_up(existing) else None
        _password_errors(password, candidate or User(phone=e164, full_name=full_name))
        if existing is not None and candidate is None:
            make_password(password)  # same work as a real sign-up: same timing class
            challenge = new_challenge(OtpChallenge.Purpose.REGISTER, e164, None, ip, decoy=True)
            # The notice is for the account's owner: in the account's language.
            issue_code(challenge, ip=ip, notice=True, language=existing.language)
            return challenge
        if existing is None:
            existing = User.objects.create_user(
                e164, password, full_name=full_name, language=User.new_account_language(language)
            )
        else:
            # A sign-up that never completed: nobody ever chose its language.
            existing.full_name = full_name
            existing.language = User.new_account_language(language)
            existing.set_password(password)
            existing.save(update_fields=["full_name", "language", "password"])
        challenge = new_challenge(OtpChallenge.Purpose.REGISTER, e164, existing, ip)
        issue_code(challenge, ip=ip)
        return challenge


def _pending_sign_up(user: User) -> bool:
    """A sign-up that never completed: the only account a new sign-up may rewrite.

    Anything that was ever in use (verified, signed in, a session, identity
    recorded) is an existing account, whatever its number's state: signing up
    again never takes it over (its name and password stay).
    """
    return (
        user.phone_verified_at is None
        and user.last_login is None
        and user.verification_level == User.Level.UNVERIFIED
        and not user.citizen_id
        and not DeviceSession.objects.filter(user=user).exists()
    )


def verify_registration(
    *, challenge_id: uuid.UUID, code: str, device: DeviceInfo, ip: str
) -> tuple[DeviceSession, TokenPair]:
    """The code proves the number: the account becomes active (level 1) and signs in."""
    with transaction.atomic():
        challenge = verify_code(challenge_id, OtpChallenge.Purpose.REGISTER, code)
        user = challenge.user  # read with the challenge
        if user is None:  # a neutral answer's challenge never completes
            raise sms_codes.invalid_code()
        # Checked and written in one statement (the row is locked while it runs): a
        # number verified meanwhile by another sign-up or a phone change makes it a
        # wrong code, like the read-lock-check it replaces.
        now = timezone.now()
        activated = User.objects.filter(
            pk=user.pk, phone=challenge.phone, phone_verified_at=None
        ).update(
            phone_verified_at=now,
            verification_level=Greatest("verification_level", Value(User.Level.PHONE)),
        )
        if activated != 1:
            raise sms_codes.invalid_code()
        user.phone_verified_at = now
        user.verification_level = max(user.verification_level, User.Level.PHONE)
        logger.info("account %s verified its phone %s", user.pk, mask_phone(user.phone))
        return sign_device_in(
            user, device, ip, second_factor="sms_otp", auth_method=AuthMethod.REGISTRATION
        )


# --- Profile and identity ------------------------------------------------------------


def update_profile(*, user: User, full_name: str | None, language: str | None) -> User:
    fields = []
    if full_name is not None:
        if not full_name.strip():
            raise field_error("full_name", "required", _("This field is required."))
        user.full_name = full_name.strip()
        fields.append("full_name")
    if language is not None:
        user.language = language
        fields.append("language")
    if fields:
        user.save(update_fields=fields)
    return user


def _prove_possession(
    user: User, session: DeviceSession, password: str | None, totp_code: str | None, ip: str
) -> None:
    if totp_code:
        if set_up_after(user, "totp", session.authenticated_at):
            # Set up by whoever holds this session: it proves nothing more than the session.
            raise field_error(
                "totp_code",
                "authenticator_newer_than_sign_in",
                _(
                    "Your authenticator app was set up after you signed in on this device. "
                    "Enter your password, or sign in again first."
                ),
            )
        verify_factor(user, "totp", totp_code, code_key=f"proof:{user.pk}")
        return
    if not password:
        raise field_error(
            "password", "required", _("Enter your password or an authenticator code.")
        )
    # The live session stands for the second factor (a number under attack from
    # elsewhere does not stop its owner here).
    if check_password_with_limits(user.phone, password, ip).user is None:
        raise field_error("password", "invalid_password", _("The password is not correct."))


def request_phone_change(
    *,
    user: User,
    session: DeviceSession,
    new_phone: str,
    password: str | None,
    totp_code: str | None,
    ip: str,
) -> OtpChallenge:
    """A code to the new number. A number that belongs to another verified account
    gets nothing, with the same answer (the change then cannot be confirmed).

    The password or an authenticator code proves it is the owner, not only whoever
    holds `session`: an authenticator set up after the session signed in does not."""
    e164 = normalise_phone(new_phone, field="new_phone")
    if e164 == user.phone:
        raise field_error(
            "new_phone", "same_phone", _("This is already the number of your account.")
        )
    _prove_possession(user, session, password, totp_code, ip)
    with transaction.atomic():
        taken = (
            User.objects.filter(phone=e164, phone_verified_at__isnull=False)
            .exclude(pk=user.pk)
            .exists()
        )
        challenge = new_challenge(OtpChallenge.Purpose.CHANGE_PHONE, e164, user, ip, decoy=taken)
        issue_code(challenge, ip=ip)
        return challenge


def confirm_phone_change(
    *, user: User, session: DeviceSession, challenge_id: uuid.UUID, code: str
) -> User:
    """The code from the new number moves the account there; the old number is told.

    Every other session ends, and every sign-in in progress (its codes went to the old
    number, which may be in someone else's hands: the reason to change it)."""
    with transaction.atomic():
        challenge = verify_code(challenge_id, OtpChallenge.Purpose.CHANGE_PHONE, code, user=user)
        old_phone = user.phone
        # A sign-up that never verified this number does not own it.
        free_phone_number(challenge.phone, keep=user)
        user.phone = challenge.phone
        user.phone_verified_at = timezone.now()
        try:
            with transaction.atomic():
                user.save(update_fields=["phone", "phone_verified_at"])
        except IntegrityError as exc:
            raise Conflict("phone_taken", _("This number belongs to another account.")) from exc
        end_sign_ins(user, reason="phone_changed", keep=session)
        # Sent by a job (retried), committed with the change: the answer waits for no
        # gateway. In the account's language: its owner reads it.
        notify_owner(
            user,
            NOTICE_PHONE_CHANGED,
            purpose="notice.phone_changed",
            to=old_phone,
            last4=user.phone[-4:],
        )
    return user


IDENTITY_SCOPE = "identity"
IDENTITY_IP_SCOPE = "identity-ip"
DAY_SECONDS = 86400


def _count_identity_attempt(user: User, ip: str) -> None:
    """Count one citizen-ID entry per account and per client address (429 beyond)."""
    for scope, key, limit in (
        (IDENTITY_SCOPE, str(user.pk), settings.CITIZEN_ID_CHANGES_PER_USER_PER_DAY),
        (IDENTITY_IP_SCOPE, rate_limit_address(ip), settings.CITIZEN_ID_CHANGES_PER_IP_PER_DAY),
    ):
        try:
            reserve_attempt(
                scope, key, limit=limit, lock_seconds=DAY_SECONDS, window_seconds=DAY_SECONDS
            )
        except LockedOut as exc:
            raise RateLimited(
                exc.retry_after,
                "identity_changes_exceeded",
                _("Too many citizen ID changes. Try again tomorrow or ask support."),
            ) from exc


def _holder_of(citizen_id: str, user: User) -> User | None:
    return User.objects.filter(citizen_id=citizen_id).exclude(pk=user.pk).first()


def set_identity(*, user: User, citizen_id: str, birth_date: dt.date, ip: str) -> User:
    """Record the citizen ID (checked structurally); staff verify it for level 2.

    The answer never says whether another account holds the number (that would let
    anyone test numbers): a number already held is kept aside as a conflict
    (`CitizenIdConflict`, entered in the app) for support to settle in person, and the
    caller sees it recorded like any other (`access.entered_citizen_id`).
    Every entry counts towards CITIZEN_ID_CHANGES_PER_USER_PER_DAY and
    CITIZEN_ID_CHANGES_PER_IP_PER_DAY.
    """
    if user.verification_level >= User.Level.IDENTITY:
        raise Conflict("identity_locked", _("Your identity is verified; ask support to change it."))
    value = validate_citizen_id(citizen_id, birth_date)
    _count_identity_attempt(user, ip)
    with transaction.atomic():
        user.birth_date = birth_date
        holder = _holder_of(value, user)
        if holder is None:
            user.citizen_id = value
            try:
                with transaction.atomic():
                    user.save(update_fields=["citizen_id", "birth_date"])
            except IntegrityError:  # taken meanwhile by a concurrent entry
                holder = _holder_of(value, user)
                if holder is None:
                    raise
        claim = None
        if holder is not None:
            user.citizen_id = None
            user.save(update_fields=["citizen_id", "birth_date"])
            claim = citizen_id_conflicts.flag(
                citizen_id=value,
                verified_user=user,
                declared_by=holder,
                source=CitizenIdConflict.Source.DECLARED,
            )
            logger.warning(
                "account %s entered a citizen ID another account holds; flagged for support",
                user.pk,
            )
        # An earlier number this account entered, held aside, is no longer its claim;
        # a number it held and another account claimed, corrected here: settled.
        citizen_id_conflicts.withdraw(user, keep=claim)
        citizen_id_conflicts.settle(user)
    return user


# --- Passwords ----------------------------------------------------------------------


def request_password_reset(*, phone: str, ip: str) -> OtpChallenge:
    """Same answer for every number; only a verified account gets a code."""
    e164 = normalise_phone(phone)
    with transaction.atomic():
        user = User.objects.filter(
            phone=e164, is_active=True, phone_verified_at__isnull=False
        ).first()
        challenge = new_challenge(
            OtpChallenge.Purpose.RESET_PASSWORD, e164, user, ip, decoy=user is None
        )
        issue_code(challenge, ip=ip)
        return challenge


def reset_password(*, challenge_id: uuid.UUID, code: str, new_password: str, ip: str = "") -> None:
    """Set a new password with a reset code; every session of the account ends, and
    its owner is told by SMS (committed with the change).

    Before the code is proven nothing of the account is looked at: a password like
    its name or number would otherwise tell a caller holding any challenge id whether
    the number is registered and whose it is, uncounted. So the checks that need no
    account (length, common, digits) come first, the same for every challenge; then
    the code is counted and checked (purpose, unspent, unexpired); only then is the
    password compared with the account, and a refusal there rolls the spent code
    back so the citizen may choose another password with it.
    """
    _password_errors(new_password, User(phone="", full_name=""), field="new_password")
    with transaction.atomic():
        challenge = verify_code(challenge_id, OtpChallenge.Purpose.RESET_PASSWORD, code)
        if challenge.user_id is None:  # a neutral answer's challenge never completes
            raise sms_codes.invalid_code()
        user = User.objects.select_for_update().get(pk=challenge.user_id)
        _password_errors(new_password, user, field="new_password")
        user.set_password(new_password)
        user.must_reset_password = False
        user.save(update_fields=["password", "must_reset_password"])
        end_sign_ins(user, reason="password_reset")
        notify_owner(user, NOTICE_PASSWORD_RESET, purpose="notice.password_reset")
    clear_client_failures(user.phone, ip)


def change_password(
    *, user: User, session: DeviceSession, current_password: str, new_password: str, ip: str
) -> None:
    """Needs the current password; every other session ends, and every sign-in in
    progress (opened with the old password). The owner is told by SMS (committed
    with the change)."""
    if check_password_with_limits(user.phone, current_password, ip).user is None:
        raise field_error("current_password", "invalid_password", _("The password is not correct."))
    _password_errors(new_password, user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        end_sign_ins(user, reason="password_changed", keep=session)
        notify_owner(user, NOTICE_PASSWORD_CHANGED, purpose="notice.password_changed")
