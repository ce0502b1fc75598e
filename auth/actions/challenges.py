"""SMS code challenges: opening one, texting its code, resending it, spending it.

The building blocks of sign-up, sign-in on a new device, password reset and
phone change (auth/actions/accounts.py, auth/actions/sign_in.py): they run
inside the caller's transaction. What a code looks like, its texts and its
errors are in auth/sms_codes.py.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth import sms_codes
from auth.access import open_challenge
from auth.models import OtpChallenge, User
from auth.ratelimit import (
    CodeExhausted,
    LockedOut,
    clear_failures,
    reserve_attempt,
    take_sms_allowance,
)
from auth.sms import SmsError, send_sms
from backend.errors import NotFound, RateLimited, ServiceUnavailable, Unprocessable

logger = logging.getLogger(__name__)


def new_challenge(purpose: str, phone: str, user: User | None, ip: str) -> OtpChallenge:
    """A challenge not saved yet: `issue_code` saves it with its code."""
    return OtpChallenge(
        purpose=purpose,
        phone=phone,
        user=user,
        ip=ip,
        expires_at=timezone.now() + dt.timedelta(seconds=settings.OTP_TTL_SECONDS),
    )


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


def _relaxing_commit() -> RawSQL:
    """`commit_without_waiting_for_disk` as a column of the row read that opens the
    transaction: `set_config(..., is_local => true)` is `SET LOCAL`, evaluated with
    the locked row, so the relaxed commit costs no statement (round trip) of its own."""
    return RawSQL("set_config('synchronous_commit', 'off', true)", ())


def issue_code(
    challenge: OtpChallenge,
    *,
    ip: str,
    send: bool = True,
    notice: str = "",
    commit_relaxed: bool = False,
) -> None:
    """Give `challenge` a fresh code and text it (or `notice` instead, or nothing).

    Call inside the action's transaction, which must hold only pending state: it
    commits without waiting for the disk (`commit_without_waiting_for_disk`;
    `commit_relaxed` when the caller already did it with its read). The SMS limits
    are counted the same whether or not anything is sent, so the answers for a
    known and an unknown number cannot be told apart.
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
    if not commit_relaxed:
        commit_without_waiting_for_disk()
    now = timezone.now()
    code = sms_codes.new_code() if send else ""
    # The id is set on creation (uuid4), so a new challenge is hashed and inserted at once.
    challenge.code_hash = sms_codes.hash_code(challenge, code) if send else ""
    challenge.code_sent_at = now
    challenge.expires_at = now + dt.timedelta(seconds=settings.OTP_TTL_SECONDS)
    if challenge._state.adding:
        challenge.save(force_insert=True)
    else:
        challenge.save(update_fields=["code_hash", "code_sent_at", "expires_at"])
    try:
        if send:
            text = sms_codes.SMS_TEXTS[OtpChallenge.Purpose(challenge.purpose)].format(
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


def resend_code(*, challenge_id: uuid.UUID, ip: str) -> OtpChallenge:
    """A new code for an open challenge (the old one stops working)."""
    with transaction.atomic():
        rows = OtpChallenge.objects.select_for_update().filter(pk=challenge_id, consumed_at=None)
        relaxed = connection.vendor == "postgresql"
        if relaxed:  # only pending state is written below (issue_code)
            rows = rows.annotate(_relaxed_commit=_relaxing_commit())
        challenge = rows.first()
        if challenge is None:
            raise NotFound("challenge_not_found", _("This verification is over. Start again."))
        decoy = challenge.user_id is None
        issue_code(challenge, ip=ip, send=not decoy, commit_relaxed=relaxed)
        return challenge


def reserve_code_attempt(challenge: OtpChallenge, code_key: str) -> None:
    """Count this try against the code and the account before looking at it."""
    reserve_account_attempt(sms_codes.account_key(challenge), code_key)


def reserve_account_attempt(account: str, code_key: str) -> None:
    """Count a try of a code (SMS, TOTP, recovery) against the account's lockout and
    the code's own limit, before the code is looked at."""
    try:
        reserve_attempt(
            sms_codes.OTP_SCOPE,
            account,
            limit=settings.OTP_MAX_FAILURES,
            lock_seconds=settings.OTP_LOCKOUT_SECONDS,
            window_seconds=settings.OTP_FAILURE_WINDOW_SECONDS,
            code_key=code_key,
            code_limit=settings.OTP_MAX_ATTEMPTS_PER_CODE,
        )
    except LockedOut as exc:
        raise sms_codes.locked(exc.retry_after) from exc
    except CodeExhausted as exc:
        raise Unprocessable(
            "code_attempts_exceeded", _("Too many tries for this code. Ask for a new one.")
        ) from exc


def consume_challenge(challenge: OtpChallenge) -> None:
    """Spend the challenge; a twin request that lost the race sees a wrong code."""
    spent = OtpChallenge.objects.filter(pk=challenge.pk, consumed_at=None).update(
        consumed_at=timezone.now()
    )
    if spent != 1:
        raise sms_codes.invalid_code()


def verify_code(
    challenge_id: uuid.UUID, purpose: str, code: str, *, user: User | None = None
) -> OtpChallenge:
    """Check an SMS code and spend its challenge (call inside the action's transaction)."""
    challenge = open_challenge(challenge_id, purpose, user=user)
    sms_codes.check_expiry(challenge)
    reserve_code_attempt(challenge, f"{challenge.id}:{challenge.code_hash[:16]}")
    candidate = sms_codes.hash_code(challenge, code.strip())
    if not challenge.code_hash or not hmac.compare_digest(candidate, challenge.code_hash):
        raise sms_codes.invalid_code()
    consume_challenge(challenge)
    clear_failures(sms_codes.OTP_SCOPE, sms_codes.account_key(challenge))
    return challenge
