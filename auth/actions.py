"""Signing up and in: one function per state change, each in one transaction.

Sign-up, sign-in (with the second step on new devices), passwords and device
sessions. The authenticator app and recovery codes are in auth/second_factor.py,
the profile, phone number and citizen ID in auth/profile.py. Handlers in
auth/api.py parse and authorise; the rules live here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import uuid
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth import otp
from auth.models import DeviceSession, OtpChallenge, User
from auth.phone import mask_phone, normalise_phone
from auth.ratelimit import LockedOut, clear_failures, lock_remaining, reserve_attempt
from auth.second_factor import available_methods, verify_factor
from auth.tokens import (
    TokenPair,
    hash_device_key,
    revoke_all_sessions,
    revoke_session,
    start_session,
)
from backend.errors import (
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unprocessable,
    field_error,
)

logger = logging.getLogger(__name__)

LOGIN_SCOPE = "login"
LOGIN_IP_SCOPE = "login-ip"
# A device whose last session ended for one of these reasons is a new device again.
SECURITY_REVOCATIONS = (
    "refresh_reuse",
    "password_reset",
    "password_changed",
    "phone_changed",
    "logout_all",
    "revoked_by_user",
    "support_reset",
)


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    name: str = ""
    platform: str = DeviceSession.Platform.OTHER
    app_version: str = ""
    device_key: str = ""


@dataclass(frozen=True)
class LoginResult:
    tokens: TokenPair | None = None
    challenge: OtpChallenge | None = None
    methods: tuple[str, ...] = ()


@functools.cache
def _dummy_hash() -> str:
    return make_password("not-a-real-password-just-for-timing")


def _password_errors(password: str, user: User, field: str = "password") -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise Unprocessable(
            details=[
                {
                    "field": field,
                    "code": error.code or "invalid",
                    "message": " ".join(str(m) for m in error.messages),
                }
                for error in exc.error_list
            ]
        ) from exc


def _session(user: User, device: DeviceInfo, ip: str) -> tuple[DeviceSession, TokenPair]:
    return start_session(
        user,
        device_id=device.device_id,
        name=device.name,
        platform=device.platform,
        app_version=device.app_version,
        ip=ip,
    )


def new_challenge(purpose: str, phone: str, user: User | None, ip: str) -> OtpChallenge:
    return OtpChallenge(
        purpose=purpose,
        phone=phone,
        user=user,
        ip=ip,
        expires_at=timezone.now() + dt.timedelta(seconds=settings.OTP_TTL_SECONDS),
    )


# --- Sign-up ------------------------------------------------------------------------


def register(*, phone: str, full_name: str, password: str, ip: str) -> OtpChallenge:
    """Start a sign-up. The answer never tells whether the number already has an account.

    A new or still unverified number gets a pending account and a code; a verified
    number gets a notice SMS and a challenge that no code can complete.
    """
    e164 = normalise_phone(phone)
    full_name = full_name.strip()
    if not full_name:
        raise field_error("full_name", "required", _("This field is required."))
    with transaction.atomic():
        existing = User.objects.select_for_update().filter(phone=e164).first()
        candidate = existing if existing and not existing.phone_verified_at else None
        _password_errors(password, candidate or User(phone=e164, full_name=full_name))
        if existing is not None and existing.phone_verified_at is not None:
            make_password(password)  # same work as a real sign-up: same timing class
            challenge = new_challenge(OtpChallenge.Purpose.REGISTER, e164, None, ip)
            otp.issue_code(challenge, ip=ip, send=False, notice=otp.NOTICE_ALREADY_REGISTERED)
            return challenge
        if existing is None:
            existing = User.objects.create_user(e164, password, full_name=full_name)
        else:
            existing.full_name = full_name
            existing.set_password(password)
            existing.save(update_fields=["full_name", "password"])
        challenge = new_challenge(OtpChallenge.Purpose.REGISTER, e164, existing, ip)
        otp.issue_code(challenge, ip=ip)
        return challenge


def resend_code(*, challenge_id: uuid.UUID, ip: str) -> OtpChallenge:
    """A new code for an open challenge (the old one stops working)."""
    with transaction.atomic():
        challenge = (
            OtpChallenge.objects.select_for_update()
            .filter(pk=challenge_id, consumed_at=None)
            .first()
        )
        if challenge is None:
            raise NotFound("challenge_not_found", _("This verification is over. Start again."))
        decoy = challenge.user_id is None
        otp.issue_code(challenge, ip=ip, send=not decoy)
        return challenge


def verify_registration(
    *, challenge_id: uuid.UUID, code: str, device: DeviceInfo, ip: str
) -> tuple[DeviceSession, TokenPair]:
    """The code proves the number: the account becomes active (level 1) and signs in."""
    with transaction.atomic():
        challenge = otp.verify_code(challenge_id, OtpChallenge.Purpose.REGISTER, code)
        user = challenge.user  # read with the challenge
        if user is None:  # a neutral answer's challenge never completes
            raise otp.invalid_code()
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
            raise otp.invalid_code()
        user.phone_verified_at = now
        user.verification_level = max(user.verification_level, User.Level.PHONE)
        logger.info("account %s verified its phone %s", user.pk, mask_phone(user.phone))
        return _session(user, device, ip)


# --- Sign-in ------------------------------------------------------------------------


def _invalid_credentials() -> NotAuthenticated:
    return NotAuthenticated(
        "invalid_credentials", _("The phone number or the password is not correct.")
    )


def _login_locked(retry_after: int) -> RateLimited:
    return RateLimited(retry_after, "login_locked", _("Too many failed sign-ins. Try again later."))


def check_password_with_limits(phone: str, password: str, ip: str) -> User | None:
    """The verified, active user if the password is right; counts failures.

    Unknown numbers run the same hasher on a dummy hash and count the same
    failures, so neither the answer nor its timing tells them apart.
    """
    ip_wait = lock_remaining(LOGIN_IP_SCOPE, ip)
    if ip_wait:
        raise _login_locked(ip_wait)
    try:
        reserve_attempt(
            LOGIN_SCOPE,
            phone,
            limit=settings.LOGIN_MAX_FAILURES,
            lock_seconds=settings.LOGIN_LOCKOUT_SECONDS,
            window_seconds=settings.LOGIN_LOCKOUT_SECONDS,
        )
    except LockedOut as exc:
        raise _login_locked(exc.retry_after) from exc
    user = User.objects.filter(phone=phone, is_active=True).first()
    if user is None or user.phone_verified_at is None:
        check_password(password, _dummy_hash())
        ok = False
    else:
        ok = user.check_password(password)
    if not ok:
        # The IP's own lock is checked on its next attempt, above.
        with contextlib.suppress(LockedOut):
            reserve_attempt(
                LOGIN_IP_SCOPE,
                ip,
                limit=settings.LOGIN_MAX_FAILURES_PER_IP_PER_HOUR,
                lock_seconds=3600,
                window_seconds=3600,
            )
        return None
    clear_failures(LOGIN_SCOPE, phone)
    return user


def _known_device(user: User, device: DeviceInfo) -> bool:
    """The app proves it is an installation this account signed in on before.

    The device id alone is not secret (anyone may send it); the device key given
    at that earlier sign-in is. Sessions that ended for a security reason no
    longer vouch for their device.
    """
    if not device.device_key:
        return False
    return (
        DeviceSession.objects.filter(
            user=user,
            device_id=device.device_id,
            device_key_hash=hash_device_key(device.device_key),
        )
        .exclude(revoked_reason__in=SECURITY_REVOCATIONS)
        .exists()
    )


def login(
    *, phone: str, password: str, device: DeviceInfo, ip: str, second_factor: str = "sms_otp"
) -> LoginResult:
    """Password first; a device this account never used needs a second step."""
    e164 = normalise_phone(phone)
    user = check_password_with_limits(e164, password, ip)
    if user is None:
        raise _invalid_credentials()
    if user.must_reset_password:
        raise PermissionDenied(
            "password_reset_required",
            _("Your password must be reset before you can sign in. Use Forgot password."),
        )
    if _known_device(user, device):
        with transaction.atomic():
            _session_row, tokens = _session(user, device, ip)
        return LoginResult(tokens=tokens)
    methods = available_methods(user)
    with transaction.atomic():
        challenge = new_challenge(OtpChallenge.Purpose.LOGIN, user.phone, user, ip)
        # The device key is a secret: it is checked above, never stored.
        challenge.device = {k: v for k, v in asdict(device).items() if k != "device_key"}
        if second_factor in methods and second_factor != "sms_otp":
            challenge.save()
        else:
            otp.issue_code(challenge, ip=ip)
    return LoginResult(challenge=challenge, methods=methods)


def complete_login(
    *, challenge_id: uuid.UUID, method: str, code: str, ip: str
) -> tuple[DeviceSession, TokenPair]:
    """The second step on a new device: SMS code, TOTP or a recovery code."""
    with transaction.atomic():
        if method == "sms_otp":
            challenge = otp.verify_code(challenge_id, OtpChallenge.Purpose.LOGIN, code)
        else:
            challenge = otp.open_challenge(challenge_id, OtpChallenge.Purpose.LOGIN)
            otp.check_expiry(challenge)
            if challenge.user is None:  # login challenges always have a user
                raise RuntimeError("login challenge without a user")
            verify_factor(challenge.user, method, code, code_key=f"{challenge.id}:{method}")
            otp.consume(challenge)
        user = challenge.user
        if user is None:
            raise RuntimeError("login challenge without a user")
        device = DeviceInfo(**challenge.device)
        return _session(user, device, ip)


def reauthenticate(*, session: DeviceSession, password: str, ip: str) -> None:
    """The password again: sensitive actions are allowed for REAUTH_WINDOW_HOURS."""
    user = check_password_with_limits(session.user.phone, password, ip)
    if user is None or user.pk != session.user_id:
        raise Unprocessable("invalid_password", _("The password is not correct."))
    now = timezone.now()
    DeviceSession.objects.filter(pk=session.pk).update(authenticated_at=now)
    session.authenticated_at = now


# --- Passwords ----------------------------------------------------------------------


def request_password_reset(*, phone: str, ip: str) -> OtpChallenge:
    """Same answer for every number; only a verified account gets a code."""
    e164 = normalise_phone(phone)
    with transaction.atomic():
        user = User.objects.filter(
            phone=e164, is_active=True, phone_verified_at__isnull=False
        ).first()
        challenge = new_challenge(OtpChallenge.Purpose.RESET_PASSWORD, e164, user, ip)
        otp.issue_code(challenge, ip=ip, send=user is not None)
        return challenge


def reset_password(*, challenge_id: uuid.UUID, code: str, new_password: str) -> None:
    """Set a new password with a reset code; every session of the account ends."""
    pending = OtpChallenge.objects.select_related("user").filter(pk=challenge_id).first()
    probe = (pending.user if pending else None) or User(phone="", full_name="")
    _password_errors(new_password, probe, field="new_password")
    with transaction.atomic():
        challenge = otp.verify_code(challenge_id, OtpChallenge.Purpose.RESET_PASSWORD, code)
        if challenge.user_id is None:  # a neutral answer's challenge never completes
            raise otp.invalid_code()
        user = User.objects.select_for_update().get(pk=challenge.user_id)
        user.set_password(new_password)
        user.must_reset_password = False
        user.save(update_fields=["password", "must_reset_password"])
        revoke_all_sessions(user, reason="password_reset")
    clear_failures(LOGIN_SCOPE, user.phone)


def change_password(
    *, user: User, session: DeviceSession, current_password: str, new_password: str, ip: str
) -> None:
    """Needs the current password; every other session ends."""
    if check_password_with_limits(user.phone, current_password, ip) is None:
        raise field_error("current_password", "invalid_password", _("The password is not correct."))
    _password_errors(new_password, user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        DeviceSession.objects.filter(user=user, revoked_at=None).exclude(pk=session.pk).update(
            revoked_at=timezone.now(), revoked_reason="password_changed"
        )


# --- Sessions -------------------------------------------------------------------------


def logout(*, session: DeviceSession) -> None:
    revoke_session(session, reason="logout")


def logout_everywhere(*, user: User) -> int:
    return revoke_all_sessions(user, reason="logout_all")


def access_session(user: User, session_id: uuid.UUID) -> DeviceSession:
    """One of the user's live sessions; anyone else's reads as not found."""
    session = DeviceSession.objects.filter(pk=session_id, user=user, revoked_at=None).first()
    if session is None:
        raise NotFound()
    return session


def revoke_own_session(*, user: User, session_id: uuid.UUID) -> None:
    revoke_session(access_session(user, session_id), reason="revoked_by_user")
