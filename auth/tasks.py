"""Background jobs of the accounts app."""

from __future__ import annotations

from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from auth.actions.housekeeping import purge_expired_flows
from auth.sms import send_sms
from backend.jobs import RETRY_ON_INFRASTRUCTURE, RetryOnInfrastructure


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
