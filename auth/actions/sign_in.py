"""Signing in: the password with its limits, then the second step on a new device.

Sign-up, the profile and passwords are in auth/actions/accounts.py, device
sessions in auth/actions/sessions.py, the authenticator app and recovery codes
in auth/actions/second_factor.py. Handlers in auth/api.py parse and authorise;
the rules live here.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth import sms_codes
from auth.access import open_challenge
from auth.actions.challenges import consume_challenge, issue_code, new_challenge, verify_code
from auth.actions.second_factor import available_methods, verify_factor
from auth.actions.sessions import start_session
from auth.models import AuthMethod, DeviceSession, OtpChallenge, User
from auth.phone import normalise_phone
from auth.ratelimit import LockedOut, clear_failures, lock_remaining, reserve_attempt
from auth.tokens import TokenPair, hash_device_key
from backend.errors import (
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
    Unprocessable,
)

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
SECOND_STEP_METHODS = {
    "sms_otp": AuthMethod.PHONE_OTP,
    "totp": AuthMethod.TOTP,
    "recovery_code": AuthMethod.RECOVERY_CODE,
}


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


def sign_device_in(
    user: User, device: DeviceInfo, ip: str, *, auth_method: str = "", national_level: int = 0
) -> tuple[DeviceSession, TokenPair]:
    """A new session of `user` on the device (inside the caller's transaction)."""
    return start_session(
        user,
        device_id=device.device_id,
        name=device.name,
        platform=device.platform,
        app_version=device.app_version,
        ip=ip,
        auth_method=auth_method,
        national_level=national_level,
    )


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
            _session_row, tokens = sign_device_in(user, device, ip, auth_method=AuthMethod.PASSWORD)
        return LoginResult(tokens=tokens)
    methods = available_methods(user)
    with transaction.atomic():
        challenge = new_challenge(OtpChallenge.Purpose.LOGIN, user.phone, user, ip)
        # The device key is a secret: it is checked above, never stored.
        challenge.device = {k: v for k, v in asdict(device).items() if k != "device_key"}
        if second_factor in methods and second_factor != "sms_otp":
            challenge.save()
        else:
            issue_code(challenge, ip=ip)
    return LoginResult(challenge=challenge, methods=methods)


def complete_login(
    *, challenge_id: uuid.UUID, method: str, code: str, ip: str
) -> tuple[DeviceSession, TokenPair]:
    """The second step on a new device: SMS code, TOTP or a recovery code."""
    with transaction.atomic():
        if method == "sms_otp":
            challenge = verify_code(challenge_id, OtpChallenge.Purpose.LOGIN, code)
        else:
            challenge = open_challenge(challenge_id, OtpChallenge.Purpose.LOGIN)
            sms_codes.check_expiry(challenge)
            if challenge.user is None:  # login challenges always have a user
                raise RuntimeError("login challenge without a user")
            verify_factor(challenge.user, method, code, code_key=f"{challenge.id}:{method}")
            consume_challenge(challenge)
        user = challenge.user
        if user is None:
            raise RuntimeError("login challenge without a user")
        device = DeviceInfo(**challenge.device)
        return sign_device_in(user, device, ip, auth_method=SECOND_STEP_METHODS[method])


def reauthenticate(*, session: DeviceSession, password: str, ip: str) -> None:
    """The password again: sensitive actions are allowed for REAUTH_WINDOW_HOURS."""
    user = check_password_with_limits(session.user.phone, password, ip)
    if user is None or user.pk != session.user_id:
        raise Unprocessable("invalid_password", _("The password is not correct."))
    now = timezone.now()
    DeviceSession.objects.filter(pk=session.pk).update(authenticated_at=now)
    session.authenticated_at = now
