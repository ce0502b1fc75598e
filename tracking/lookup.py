"""Public lookup of a dossier by its code and the receipt's secret, without signing in.

What it shows is what anybody holding the paper receipt may know: the procedure,
the agency, the status, the appointment date and the timeline's public steps.
Never names, ID numbers, addresses, form data, attachments or messages.

Guessing is bounded twice, with the Redis counters the OTP checks use
(`auth.ratelimit`): per client IP (attempts per hour, right or wrong) and per
dossier code (wrong secrets before a lockout). A code that does not exist is
counted, locked and answered exactly like a wrong secret, and costs the same
hashing work, so the answers tell nothing about which codes exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from auth import ratelimit
from backend.errors import NotFound, RateLimited
from backend.middleware import rate_limit_address
from dossiers.lookup_secrets import secret_matches
from dossiers.models import Dossier, DossierEvent
from tracking.texts import event_text
from tracking.timeline import _status_label

# The steps of the timeline a receipt holder sees (no ratings, no deliveries:
# those concern the applicant's person and address).
PUBLIC_STEP_TYPES = frozenset(
    {
        "dossier.submitted",
        "dossier.accepted",
        "dossier.refused",
        "dossier.processing_started",
        "dossier.supplement_requested",
        "dossier.supplement_submitted",
        "dossier.payment_requested",
        "dossier.completed",
        "dossier.handed_over",
        "dossier.stopped",
        "dossier.apologised",
        "dossier.withdrawn",
    }
)
CODE_MAX_CHARS = 40
SECRET_MAX_CHARS = 40


@dataclass
class PublicStep:
    time: dt.datetime
    event_type: str
    status: int | None
    status_label: str | None
    text: str


@dataclass
class PublicView:
    code: str
    procedure_code: str
    procedure_name: str
    agency_code: str
    agency_name: str
    status: int
    status_label: str
    submitted_at: dt.datetime | None
    appointment_at: dt.datetime | None
    finished_at: dt.datetime | None
    steps: list[PublicStep]


def lookup_failed() -> NotFound:
    return NotFound(
        "lookup_failed",
        _("No dossier matches this code and secret. Check both on your receipt."),
    )


def lookup_locked(retry_after: int) -> RateLimited:
    return RateLimited(
        retry_after,
        "lookup_locked",
        _("Too many attempts. Try again later."),
    )


def _code_key(code: str) -> str:
    # Counters are keyed by a digest: whatever the caller typed never becomes a key.
    return hashlib.sha256(code.encode()).hexdigest()[:32]


def lookup_dossier(code: str, secret: str, *, ip: str) -> PublicView:
    """The public view of the dossier `code` if `secret` is its receipt's secret."""
    code = code.strip().upper()
    try:
        ratelimit.reserve_attempt(
            "lookup-ip",
            rate_limit_address(ip),
            limit=settings.LOOKUP_MAX_ATTEMPTS_PER_IP_PER_HOUR,
            lock_seconds=3600,
            window_seconds=3600,
        )
        ratelimit.reserve_attempt(
            "lookup-code",
            _code_key(code),
            limit=settings.LOOKUP_MAX_FAILURES_PER_CODE,
            lock_seconds=settings.LOOKUP_LOCKOUT_SECONDS,
            window_seconds=settings.LOOKUP_FAILURE_WINDOW_SECONDS,
        )
    except ratelimit.LockedOut as exc:
        raise lookup_locked(exc.retry_after) from exc
    dossier = (
        Dossier.objects.select_related("procedure", "agency")
        .filter(code=code)
        .exclude(status=Dossier.Status.DRAFT)
        .first()
    )
    stored = dossier.lookup_secret_hash if dossier is not None else None
    if not secret_matches(stored, secret) or dossier is None:
        raise lookup_failed()
    ratelimit.clear_failures("lookup-code", _code_key(code))
    return public_view(dossier)


def public_view(dossier: Dossier) -> PublicView:
    events = DossierEvent.objects.filter(dossier=dossier, type__in=PUBLIC_STEP_TYPES)
    events = events.order_by("seq")
    return PublicView(
        code=dossier.code or "",
        procedure_code=dossier.procedure.code,
        procedure_name=dossier.procedure.name,
        agency_code=dossier.agency.code,
        agency_name=dossier.agency.name,
        status=dossier.status,
        status_label=_status_label(dossier.status) or "",
        submitted_at=dossier.submitted_at,
        appointment_at=dossier.appointment_at,
        finished_at=dossier.finished_at,
        steps=[
            PublicStep(
                time=event.created_at,
                event_type=event.type,
                status=event.status_after,
                status_label=_status_label(event.status_after),
                # The generic sentence of the step, never the agency's message.
                text=event_text(event.type, {"method": (event.data or {}).get("method")}),
            )
            for event in events.only("created_at", "type", "status_after", "data")
        ],
    )


def lookup_url(code: str, secret: str | None = None) -> str:
    """The public page a receipt's QR code opens.

    The secret rides in the fragment (`#s=`), which browsers never send to a
    server: it reaches no access log or proxy; the page's script posts it.
    """
    url = f"{settings.PUBLIC_BASE_URL}/lookup?code={quote(code)}"
    return f"{url}#s={quote(secret)}" if secret else url
