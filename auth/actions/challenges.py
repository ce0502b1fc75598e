"""SMS code challenges: opening one, texting its code, resending it, spending it.

The building blocks of sign-up, sign-in on a new device, password reset and
phone change (auth/actions/accounts.py, auth/actions/sign_in.py): they run
inside the caller's transaction. What a code looks like, its texts and its
errors are in auth/sms_codes.py.

A request never talks to the SMS gateway. It counts the SMS limits, writes the
challenge and queues a job in the same transaction (`issue_code`); the job makes
the code, keeps only its hash on the challenge and texts it, retried while the
gateway fails (`deliver_code`, run by `accounts.send_code` in auth/tasks.py).
So the answer, its status and its time are the same whether a code goes out, a
notice, or nothing (the decoy of a number that must not be revealed), and
whether the gateway works; and the code itself is never in the job queue.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
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
from auth.sms import send_sms
from backend.commits import RelaxedCommit, commit_without_waiting_for_disk
from backend.errors import NotFound, RateLimited, Unprocessable
from backend.jobs import defer

logger = logging.getLogger(__name__)


def new_challenge(
    purpose: str, phone: str, user: User | None, ip: str, *, decoy: bool = False
) -> OtpChallenge:
    """A challenge not saved yet: `issue_code` saves it and queues its code.

    `decoy`: the neutral answer for a number that must not be revealed; it does
    the same work as a real one, but no code is ever made for it or accepted.
    """
    return OtpChallenge(
        purpose=purpose,
        phone=phone,
        user=user,
        decoy=decoy,
        ip=ip,
        expires_at=timezone.now() + dt.timedelta(seconds=settings.OTP_TTL_SECONDS),
    )


SEND_CODE_TASK = "accounts.send_code"
# The job that texts an account notice (never a code), retried: auth/tasks.py.
SMS_NOTICE_TASK = "accounts.send_sms_notice"


def issue_code(
    challenge: OtpChallenge,
    *,
    ip: str,
    notice: bool = False,
    commit_relaxed: bool = False,
    language: str | None = None,
) -> None:
    """Ask for a fresh code for `challenge`: count the SMS limits, save the challenge
    and queue the job that makes the code and texts it (or, for a decoy, the
    already-registered notice when `notice`, else nothing).

    Call inside the action's transaction, which must hold only pending state: it
    commits without waiting for the disk (`commit_without_waiting_for_disk`;
    `commit_relaxed` when the caller already did it with its read). A real challenge
    and a decoy run the same statements (the limits counted, the challenge written,
    one job queued), and neither waits for the gateway: the answer and its time do
    not tell whether the number has an account, nor whether the gateway works. The
    previous code stops working at once; the new one works once the job made it.
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
    challenge.code_hash = ""  # made by the job
    challenge.code_sent_at = now
    challenge.expires_at = now + dt.timedelta(seconds=settings.OTP_TTL_SECONDS)
    if challenge._state.adding:
        challenge.save(force_insert=True)
    else:
        challenge.save(update_fields=["code_hash", "code_sent_at", "expires_at"])
    # Only the challenge's id, which request this is and the text's language (the
    # request's for a code: whoever asked reads it now; `language` for a notice):
    # never the code nor the number.
    defer(
        SEND_CODE_TASK,
        challenge_id=str(challenge.id),
        requested_at=now.isoformat(),
        notice=notice,
        language=language or translation.get_language() or settings.LANGUAGE_CODE,
    )


def deliver_code(
    *, challenge_id: str, requested_at: str, notice: bool = False, language: str = ""
) -> str:
    """The job of `issue_code`: make the code, keep its hash, text it. Says what it did.

    Nothing is sent for a challenge that is spent, gone, asked again since (the newer
    request's job texts the newer code) or expired (a code that would arrive dead).
    The hash is committed before the SMS leaves, so the code works as soon as it
    can arrive; when the gateway fails (`SmsError`, raised to the job for a retry)
    nobody got that code, and the retry makes another one. A decoy gets the notice
    if asked, else nothing, and never a code.
    """
    with transaction.atomic():
        commit_without_waiting_for_disk()  # a code's hash is pending state too
        challenge = (
            OtpChallenge.objects.select_for_update()
            .filter(
                pk=challenge_id,
                consumed_at=None,
                code_sent_at=dt.datetime.fromisoformat(requested_at),
            )
            .first()
        )
        if challenge is None:
            return "superseded"
        if timezone.now() >= challenge.expires_at:
            # The gateway failed (or the queue lagged) for the code's whole life.
            logger.warning("code of challenge %s expired before it could be texted", challenge.id)
            return "expired"
        # In the language `issue_code` was given (a job queued before it passed one: the
        # default language).
        with translation.override(language or settings.LANGUAGE_CODE):
            if challenge.decoy or challenge.user_id is None:
                if not notice:
                    return "decoy"
                text = sms_codes.NOTICE_ALREADY_REGISTERED.format()
                purpose = "notice.already_registered"
            else:
                code = sms_codes.new_code()
                challenge.code_hash = sms_codes.hash_code(challenge, code)
                challenge.save(update_fields=["code_hash"])
                text = sms_codes.SMS_TEXTS[OtpChallenge.Purpose(challenge.purpose)].format(
                    code=code, minutes=max(1, settings.OTP_TTL_SECONDS // 60)
                )
                purpose = f"otp.{challenge.purpose}"
    send_sms(challenge.phone, text, purpose=purpose)
    return "sent"


def resend_code(*, challenge_id: uuid.UUID, ip: str) -> OtpChallenge:
    """A new code for an open challenge (the old one stops working)."""
    with transaction.atomic():
        rows = OtpChallenge.objects.select_for_update().filter(pk=challenge_id, consumed_at=None)
        relaxed = connection.vendor == "postgresql"
        if relaxed:  # only pending state is written below (issue_code)
            rows = rows.annotate(_relaxed_commit=RelaxedCommit())
        challenge = rows.first()
        if challenge is None:
            raise NotFound("challenge_not_found", _("This verification is over. Start again."))
        # A decoy stays one: its job sends nothing (the notice went with the first).
        issue_code(challenge, ip=ip, commit_relaxed=relaxed)
        return challenge


def code_attempt_key(challenge: OtpChallenge) -> str:
    """Where a code's own tries are counted: per request of a code (`code_sent_at`), so
    a resend gives a fresh count, and a retried SMS (a new code for the same request)
    or a decoy (no code ever) counts the same as the one real code would."""
    requested = challenge.code_sent_at.isoformat() if challenge.code_sent_at else ""
    return f"{challenge.id}:{requested}"


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


def spend_open_challenges(user: User) -> int:
    """Spend every open challenge of `user` (inside the caller's transaction).

    For a security event (auth/actions/sessions.py `end_sign_ins`): a sign-in on a new
    device, a password reset or a link in progress was opened on what the event
    changes (the password it proved, the number its code goes to, the factors support
    removed). Its code no longer finishes it, `/otp/resend` no longer revives it, and
    a code still queued is never texted (`deliver_code` sends only for open ones).
    """
    return OtpChallenge.objects.filter(user=user, consumed_at=None).update(
        consumed_at=timezone.now()
    )


def verify_code(
    challenge_id: uuid.UUID, purpose: str, code: str, *, user: User | None = None
) -> OtpChallenge:
    """Check an SMS code and spend its challenge (call inside the action's transaction)."""
    challenge = open_challenge(challenge_id, purpose, user=user)
    sms_codes.check_expiry(challenge)
    reserve_code_attempt(challenge, code_attempt_key(challenge))
    candidate = sms_codes.hash_code(challenge, code.strip())
    if not challenge.code_hash or not hmac.compare_digest(candidate, challenge.code_hash):
        raise sms_codes.invalid_code()
    consume_challenge(challenge)
    clear_failures(sms_codes.OTP_SCOPE, sms_codes.account_key(challenge))
    return challenge
