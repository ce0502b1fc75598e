"""One-time codes sent by SMS: issuing, resending and checking them.

Codes are 6 digits from `secrets`, stored as an HMAC bound to the challenge,
its purpose and its phone. A code lives OTP_TTL_SECONDS, is spent by its first
right use, allows OTP_MAX_ATTEMPTS_PER_CODE tries, and every wrong try counts
towards the account's lockout (OTP_MAX_FAILURES consecutive failures lock it for
OTP_LOCKOUT_SECONDS). Asking for a new code never resets that count.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import uuid

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth.models import OtpChallenge, User
from auth.ratelimit import (
    CodeExhausted,
    LockedOut,
    clear_failures,
    reserve_attempt,
    take_sms_allowance,
)
from auth.sms import SmsError, send_sms
from backend.errors import RateLimited, ServiceUnavailable, Unprocessable
from backend.keys import ACCOUNTS_SALT, keyed_hash

# Every SMS citizens receive is in Vietnamese (the gateway's brand name prefixes it).
SMS_TEXTS = {
    OtpChallenge.Purpose.REGISTER: (
        "{code} là mã xác thực đăng ký tài khoản Dịch vụ công, hiệu lực {minutes} phút. "
        "Không chia sẻ mã này cho bất kỳ ai."
    ),
    OtpChallenge.Purpose.LOGIN: (
        "{code} là mã xác thực đăng nhập Dịch vụ công trên thiết bị mới, hiệu lực "
        "{minutes} phút. Nếu không phải bạn, hãy đổi mật khẩu ngay."
    ),
    OtpChallenge.Purpose.RESET_PASSWORD: (
        "{code} là mã đặt lại mật khẩu tài khoản Dịch vụ công, hiệu lực {minutes} phút. "
        "Không chia sẻ mã này cho bất kỳ ai."
    ),
    OtpChallenge.Purpose.CHANGE_PHONE: (
        "{code} là mã xác nhận đổi số điện thoại tài khoản Dịch vụ công sang số này, "
        "hiệu lực {minutes} phút."
    ),
}
NOTICE_ALREADY_REGISTERED = (
    "Số điện thoại này đã có tài khoản Dịch vụ công. Nếu bạn vừa đăng ký, hãy đăng nhập "
    "hoặc dùng chức năng Quên mật khẩu. Nếu không phải bạn, hãy bỏ qua tin nhắn này."
)

OTP_SCOPE = "otp"
logger = logging.getLogger(__name__)


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def hash_code(challenge: OtpChallenge, code: str) -> str:
    return keyed_hash(
        "accounts.otp",
        f"{challenge.id}:{challenge.purpose}:{challenge.phone}:{code}",
        salt=ACCOUNTS_SALT,
    )


def account_key(challenge: OtpChallenge) -> str:
    return f"user:{challenge.user_id}" if challenge.user_id else f"phone:{challenge.phone}"


def user_account_key(user: User) -> str:
    return f"user:{user.pk}"


def commit_without_waiting_for_disk() -> None:
    """Let the current transaction commit without waiting for its WAL flush (PostgreSQL).

    For transactions that write nothing but pending state (a challenge and its
    code, a sign-up not verified yet): a database crash within the next fraction
    of a second may lose them, and the citizen then asks for a code again, which
    the SMS limits already counted. It saves the request a disk flush, the largest
    part of its time. The writes that prove something (a code spent, an account
    verified, a session) commit durably as usual.
    """
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def issue_code(challenge: OtpChallenge, *, ip: str, send: bool = True, notice: str = "") -> None:
    """Give `challenge` a fresh code and text it (or `notice` instead, or nothing).

    Call inside the action's transaction, which must hold only pending state: it
    commits without waiting for the disk (`commit_without_waiting_for_disk`).
    The SMS limits are counted the same whether or not anything is sent, so the
    answers for a known and an unknown number cannot be told apart.
    """
    refusal = take_sms_allowance(challenge.phone, ip, challenge.purpose)
    if refusal is not None:
        if refusal.limit == "resend":
            raise RateLimited(
                refusal.retry_after,
                "otp_resend_too_soon",
                _("Wait before asking for another code."),
            )
        raise RateLimited(
            refusal.retry_after,
            "sms_limit_reached",
            _("Too many codes were requested. Try again later."),
        )
    commit_without_waiting_for_disk()
    now = timezone.now()
    code = new_code() if send else ""
    # The id is set on creation (uuid4), so a new challenge is hashed and inserted at once.
    challenge.code_hash = hash_code(challenge, code) if send else ""
    challenge.code_sent_at = now
    challenge.expires_at = now + dt.timedelta(seconds=settings.OTP_TTL_SECONDS)
    if challenge._state.adding:
        challenge.save(force_insert=True)
    else:
        challenge.save(update_fields=["code_hash", "code_sent_at", "expires_at"])
    try:
        if send:
            text = SMS_TEXTS[OtpChallenge.Purpose(challenge.purpose)].format(
                code=code, minutes=max(1, settings.OTP_TTL_SECONDS // 60)
            )
            send_sms(challenge.phone, text, purpose=f"otp.{challenge.purpose}")
        elif notice:
            send_sms(challenge.phone, notice, purpose="notice.already_registered")
    except SmsError as exc:
        # The caller's transaction rolls the new code back; the app may retry.
        logger.warning("SMS for challenge %s not sent: %s", challenge.id, exc)
        raise ServiceUnavailable(
            "sms_unavailable", _("The text message could not be sent. Try again shortly.")
        ) from exc


def invalid_code() -> Unprocessable:
    return Unprocessable("invalid_code", _("This code is not correct."))


def locked(retry_after: int) -> RateLimited:
    return RateLimited(
        retry_after,
        "too_many_failed_codes",
        _("Too many wrong codes. The account is locked for a while."),
    )


def open_challenge(
    challenge_id: uuid.UUID, purpose: str, *, user: User | None = None
) -> OtpChallenge:
    """The unspent challenge of `purpose`; any other one reads as a wrong code."""
    queryset = OtpChallenge.objects.select_related("user").filter(
        pk=challenge_id, purpose=purpose, consumed_at=None
    )
    if user is not None:
        queryset = queryset.filter(user=user)
    challenge = queryset.first()
    if challenge is None:
        raise invalid_code()
    return challenge


def check_expiry(challenge: OtpChallenge) -> None:
    if timezone.now() >= challenge.expires_at:
        raise Unprocessable("code_expired", _("This code has expired. Ask for a new one."))


def reserve(challenge: OtpChallenge, code_key: str) -> None:
    """Count this try against the code and the account before looking at it."""
    try:
        reserve_attempt(
            OTP_SCOPE,
            account_key(challenge),
            limit=settings.OTP_MAX_FAILURES,
            lock_seconds=settings.OTP_LOCKOUT_SECONDS,
            window_seconds=settings.OTP_FAILURE_WINDOW_SECONDS,
            code_key=code_key,
            code_limit=settings.OTP_MAX_ATTEMPTS_PER_CODE,
        )
    except LockedOut as exc:
        raise locked(exc.retry_after) from exc
    except CodeExhausted as exc:
        raise Unprocessable(
            "code_attempts_exceeded", _("Too many tries for this code. Ask for a new one.")
        ) from exc


def consume(challenge: OtpChallenge) -> None:
    """Spend the challenge; a twin request that lost the race sees a wrong code."""
    spent = OtpChallenge.objects.filter(pk=challenge.pk, consumed_at=None).update(
        consumed_at=timezone.now()
    )
    if spent != 1:
        raise invalid_code()


def verify_code(
    challenge_id: uuid.UUID, purpose: str, code: str, *, user: User | None = None
) -> OtpChallenge:
    """Check an SMS code and spend its challenge (call inside the action's transaction)."""
    challenge = open_challenge(challenge_id, purpose, user=user)
    check_expiry(challenge)
    reserve(challenge, f"{challenge.id}:{challenge.code_hash[:16]}")
    candidate = hash_code(challenge, code.strip())
    if not challenge.code_hash or not hmac.compare_digest(candidate, challenge.code_hash):
        raise invalid_code()
    consume(challenge)
    clear_failures(OTP_SCOPE, account_key(challenge))
    return challenge
