"""Signing in: the password with its limits, then the second step on a new device.

Sign-up, the profile and passwords are in auth/actions/accounts.py, device
sessions in auth/actions/sessions.py, the authenticator app and recovery codes
in auth/actions/second_factor.py. Handlers in auth/api.py parse and authorise;
the rules live here.
"""

from __future__ import annotations

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
from auth.actions.second_factor import available_methods, refuse_factor, verify_factor
from auth.actions.sessions import start_session
from auth.models import AuthMethod, DeviceSession, OtpChallenge, User
from auth.phone import normalise_phone
from auth.ratelimit import LockedOut, clear_failures, release_attempt, reserve_attempt
from auth.tokens import TokenPair, hash_device_key
from backend.errors import (
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
    Unprocessable,
)
from backend.middleware import rate_limit_address


@dataclass(frozen=True)
class LoginCounters:
    """Where wrong passwords are counted: the app's sign-ins and the admin's apart.

    Three counters per channel (settings `<prefix>_MAX_FAILURES`, `_MAX_FAILURES_PER_NUMBER`,
    `_LOCKOUT_SECONDS`, `_MAX_FAILURES_PER_IP_PER_HOUR`):
    - per number and client address: a few wrong passwords lock that client out of
      that number (the guesser's own client, not the owner's phone elsewhere);
    - per number from everywhere, with a much higher ceiling: beyond it a password
      alone is not enough, a right one must be followed by a second factor;
    - per client address over all numbers (spraying).
    """

    scope: str
    setting_prefix: str

    def setting(self, name: str) -> int:
        return int(getattr(settings, f"{self.setting_prefix}_{name}"))

    @property
    def number_scope(self) -> str:
        return f"{self.scope}-number"

    @property
    def ip_scope(self) -> str:
        return f"{self.scope}-ip"


APP_LOGIN = LoginCounters("login", "LOGIN")
ADMIN_LOGIN = LoginCounters("admin-login", "ADMIN_LOGIN")


def client_account_key(phone: str, ip: str) -> str:
    """The per-(number, client) counter's key (the client counted by its network)."""
    return f"{phone}|{rate_limit_address(ip)}"


# A device whose last session ended for one of these reasons is a new device again
# (those ending every session also forget every device: sessions.revoke_all_sessions).
SECURITY_REVOCATIONS = (
    "refresh_reuse",
    "password_reset",
    "password_changed",
    "phone_changed",
    "logout_all",
    "revoked_by_user",
    "support_reset",
    "admin",
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
    user: User,
    device: DeviceInfo,
    ip: str,
    *,
    second_factor: str = "",
    auth_method: str = "",
    national_level: int = 0,
) -> tuple[DeviceSession, TokenPair]:
    """A new session of `user` on the device (inside the caller's transaction)."""
    return start_session(
        user,
        device_id=device.device_id,
        name=device.name,
        platform=device.platform,
        app_version=device.app_version,
        ip=ip,
        second_factor=second_factor,
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


@dataclass(frozen=True)
class PasswordCheck:
    # The account, when the password is right.
    user: User | None
    # The number's verified, active account, whether the password is right or not.
    account: User | None
    # Too many wrong passwords on this number from everywhere: a right password
    # must be followed by a second factor (the answer must not tell which it was).
    number_locked: bool


def check_password_with_limits(
    phone: str, password: str, ip: str, *, counters: LoginCounters = APP_LOGIN
) -> PasswordCheck:
    """Check the password and count a wrong one (see `LoginCounters`).

    Raises 429 `login_locked` while this client is locked out of this number, or
    this client address out of every number. Each attempt is counted before the
    password is hashed and given back when it is right, so concurrent attempts stay
    within every limit. Unknown numbers run the same hasher
    on a dummy hash and count the same failures, so neither the answer nor its
    timing tells them apart.
    """
    # Every attempt takes a slot of the client address's and the number's counters
    # before the (slow) hash, and a right password gives it back: concurrent wrong
    # passwords cannot all pass a check made before any of them was counted.
    network = rate_limit_address(ip)
    ip_limit = counters.setting("MAX_FAILURES_PER_IP_PER_HOUR")
    try:
        ip_attempt = reserve_attempt(
            counters.ip_scope, network, limit=ip_limit, lock_seconds=3600, window_seconds=3600
        )
    except LockedOut as exc:
        raise _login_locked(exc.retry_after) from exc
    lock_seconds = counters.setting("LOCKOUT_SECONDS")
    client_key = client_account_key(phone, ip)
    try:
        reserve_attempt(
            counters.scope,
            client_key,
            limit=counters.setting("MAX_FAILURES"),
            lock_seconds=lock_seconds,
            window_seconds=lock_seconds,
        )
    except LockedOut as exc:
        release_attempt(
            counters.ip_scope, network, attempt=ip_attempt, limit=ip_limit, window_seconds=3600
        )
        raise _login_locked(exc.retry_after) from exc
    number_limit = counters.setting("MAX_FAILURES_PER_NUMBER")
    try:
        number_attempt = reserve_attempt(
            counters.number_scope,
            phone,
            limit=number_limit,
            lock_seconds=lock_seconds,
            window_seconds=lock_seconds,
        )
        number_locked = False
    except LockedOut:
        number_attempt, number_locked = 0, True
    account = User.objects.filter(phone=phone, is_active=True).first()
    if account is None or account.phone_verified_at is None:
        account = None
        check_password(password, _dummy_hash())
        ok = False
    else:
        ok = account.check_password(password)
    if not ok:
        return PasswordCheck(user=None, account=account, number_locked=number_locked)
    release_attempt(
        counters.ip_scope, network, attempt=ip_attempt, limit=ip_limit, window_seconds=3600
    )
    if number_attempt:
        release_attempt(
            counters.number_scope,
            phone,
            attempt=number_attempt,
            limit=number_limit,
            window_seconds=lock_seconds,
        )
    # Only this client's count: a right password elsewhere does not end an attack.
    clear_failures(counters.scope, client_key)
    return PasswordCheck(user=account, account=account, number_locked=number_locked)


def clear_client_failures(phone: str, ip: str) -> None:
    """Forget this client's wrong passwords on this number (after a password reset)."""
    clear_failures(APP_LOGIN.scope, client_account_key(phone, ip))


def _known_device(user: User, device: DeviceInfo) -> bool:
    """The app proves it is an installation this account signed in on before.

    The device id alone is not secret (anyone may send it); the device key given
    at that earlier sign-in is. Sessions that ended for a security reason no
    longer vouch for their device, nor does any session older than an event that
    ended them all (its key is forgotten: sessions.revoke_all_sessions).
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
    check = check_password_with_limits(e164, password, ip)
    if check.number_locked:
        return _second_step_only(check, e164, device, ip, second_factor)
    user = check.user
    if user is None:
        raise _invalid_credentials()
    if user.must_reset_password:
        raise PermissionDenied(
            "password_reset_required",
            _("Your password must be reset before you can sign in. Use Forgot password."),
        )
    # Staff always take the second step, as in the admin: a support session must be
    # opened with a strong factor (auth.access.require_support_sign_in).
    if not user.is_staff and _known_device(user, device):
        with transaction.atomic():
            _session_row, tokens = sign_device_in(user, device, ip, auth_method=AuthMethod.PASSWORD)
        return LoginResult(tokens=tokens)
    methods = available_methods(user)
    with transaction.atomic():
        challenge = _login_challenge(user, e164, device, ip)
        if second_factor in methods and second_factor != "sms_otp":
            challenge.save()
        else:
            issue_code(challenge, ip=ip)
    return LoginResult(challenge=challenge, methods=methods)


def _login_challenge(
    user: User | None, phone: str, device: DeviceInfo, ip: str, *, decoy: bool = False
) -> OtpChallenge:
    challenge = new_challenge(OtpChallenge.Purpose.LOGIN, phone, user, ip, decoy=decoy)
    # The device key is a secret: it is checked before, never stored.
    challenge.device = {k: v for k, v in asdict(device).items() if k != "device_key"}
    return challenge


# What a number under attack offers, whatever the account has (and whether there is one).
UNDER_ATTACK_METHODS = ("sms_otp", "totp", "recovery_code")


def _second_step_only(
    check: PasswordCheck, phone: str, device: DeviceInfo, ip: str, second_factor: str
) -> LoginResult:
    """The number is under attack: every answer is a second step, right password or not.

    A right password gets a real challenge (its SMS code, or the authenticator or a
    recovery code); a wrong one, or an account that must reset its password, a
    decoy that never completes. Nothing in the answer may depend on the password or
    on the account, since nothing is proven yet: the same methods for every number
    (an account's own would tell that the number is registered and has an
    authenticator), and the same work: the SMS limits counted and a code job queued
    (its SMS sent by the worker, for a real challenge only) unless the request
    asked for the authenticator or a recovery code, decided by the request alone.
    """
    user = check.user if check.user is not None and not check.user.must_reset_password else None
    with transaction.atomic():
        challenge = _login_challenge(user, phone, device, ip, decoy=user is None)
        if second_factor != "sms_otp":
            challenge.save()
        else:
            issue_code(challenge, ip=ip)
    return LoginResult(challenge=challenge, methods=UNDER_ATTACK_METHODS)


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
            code_key = f"{challenge.id}:{method}"
            if challenge.user is None:  # a decoy (see _second_step_only) never completes
                # but is counted as a real try would be, so its answers are the same.
                refuse_factor(sms_codes.account_key(challenge), code_key=code_key)
            verify_factor(challenge.user, method, code, code_key=code_key)
            consume_challenge(challenge)
        user = challenge.user
        if user is None:  # a decoy has no code, so verify_code already refused it
            raise sms_codes.invalid_code()
        device = DeviceInfo(**challenge.device)
        return sign_device_in(
            user, device, ip, second_factor=method, auth_method=SECOND_STEP_METHODS[method]
        )


def reauthenticate(*, session: DeviceSession, password: str, ip: str) -> None:
    """The password again: sensitive actions are allowed for REAUTH_WINDOW_HOURS.

    The live session stands for the second factor: a number under attack from
    elsewhere (`number_locked`) does not stop its owner here.
    """
    user = check_password_with_limits(session.user.phone, password, ip).user
    if user is None or user.pk != session.user_id:
        raise Unprocessable("invalid_password", _("The password is not correct."))
    now = timezone.now()
    DeviceSession.objects.filter(pk=session.pk).update(authenticated_at=now)
    session.authenticated_at = now
