"""Deleting what sign-in flows leave behind once nobody can use it any more.

SMS-code challenges and national sign-ins hold a phone number, an IP address and
(national) the identity's claims; kept forever they would only be personal data
nobody needs. Counters that limit guesses live in Redis, not in these rows, so
deleting a row never resets a limit.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from auth.models import NationalSignIn, OtpChallenge


def purge_expired_flows(now: dt.datetime | None = None) -> int:
    """Delete challenges and national sign-ins expired `AUTH_FLOW_RETENTION_HOURS` ago."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.AUTH_FLOW_RETENTION_HOURS)
    with transaction.atomic():
        # National sign-ins first: they may point at a challenge (SET_NULL would
        # otherwise update rows about to be deleted).
        national, _ = NationalSignIn.objects.filter(expires_at__lt=cutoff).delete()
        challenges, _ = OtpChallenge.objects.filter(expires_at__lt=cutoff).delete()
    return national + challenges
