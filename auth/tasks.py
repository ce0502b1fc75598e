"""Background jobs of the accounts app."""

from __future__ import annotations

from typing import Any

import attr
from django.conf import settings
from procrastinate import BaseRetryStrategy, RetryDecision, RetryStrategy
from procrastinate.contrib.django import app

from auth.actions.challenges import deliver_code
from auth.actions.housekeeping import purge_expired_flows
from auth.phone import mask_phone
from auth.sms import SmsError, send_sms
from backend.jobs import RETRY_ON_INFRASTRUCTURE, RetryOnInfrastructure, personal_args, withheld

# Before the queue's default (0): someone is looking at their phone for this code,
# it must not wait behind a push fan-out or the housekeeping.
CODE_PRIORITY = 10


@attr.dataclass(kw_only=True)
class RetryWhileTheCodeLives(BaseRetryStrategy):
    """Try a code's SMS again when the gateway failed in a way that may pass (`SmsError`
    with `retryable`: a timeout, a 5xx, its own error 99), after 2, 4, 8, ... seconds:
    about eight tries within the code's five minutes. A refusal that a retry cannot
    fix (balance, keys, brand name) fails the job at once. The job itself sends
    nothing once the code has expired or was asked again, so the retries end then.
    """

    max_attempts: int = 8

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        if not (isinstance(exception, SmsError) and exception.retryable):
            return None
        if job.attempts + 1 >= self.max_attempts:
            return None
        wait = min(2 ** (job.attempts + 1), max(1, settings.OTP_TTL_SECONDS // 4))
        return RetryDecision(retry_in={"seconds": wait})


@app.task(
    queue="sms",
    name="accounts.send_code",
    priority=CODE_PRIORITY,
    retry=RetryOnInfrastructure(otherwise=RetryWhileTheCodeLives()),
)
def send_code(
    challenge_id: str, requested_at: str, notice: bool = False, language: str = ""
) -> str:
    """Make a challenge's code, keep its hash and text it (auth/actions/challenges.py)."""
    return deliver_code(
        challenge_id=challenge_id, requested_at=requested_at, notice=notice, language=language
    )


# The number and the text (it may carry the end of another number) are personal: the
# job admin shows them masked to staff other than superusers; the purpose is not.
@personal_args(to=mask_phone, text=withheld)
@app.task(
    queue="sms",
    name="accounts.send_sms_notice",
    retry=RetryOnInfrastructure(otherwise=RetryStrategy(max_attempts=8, exponential_wait=5)),
)
def send_sms_notice(to: str, text: str, purpose: str) -> str:
    """Deliver an account notice (never a code) by SMS; retried with backoff."""
    return send_sms(to, text, purpose=purpose)


@app.periodic(cron="23 * * * *")
@app.task(queue="maintenance", name="accounts.purge_expired_flows", retry=RETRY_ON_INFRASTRUCTURE)
def purge_expired_sign_in_flows(timestamp: int) -> int:
    """Hourly: expired SMS-code challenges and national sign-ins are deleted."""
    return purge_expired_flows()
