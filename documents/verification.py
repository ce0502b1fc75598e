"""Public verification of signed results: by the printed code, or by the file itself.

Answers say whether the document is genuine (issued here, bytes untouched),
which agency issued it for which procedure and when, and whether it was revoked
or has expired. Nothing personal beyond what the document itself prints (the
signer, from the certificate): no holder name, no dossier data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth import ratelimit
from backend.errors import ApiError, NotFound, RateLimited
from backend.middleware import rate_limit_address
from dossiers.deadlines import business_tz
from dossiers.models import ResultDocument
from dossiers.result_signatures import read_signature, verify_url


@dataclass
class Verification:
    genuine: bool
    state: str  # valid | revoked | expired | invalid | unknown
    problem: str | None = None
    result: ResultDocument | None = None

    @property
    def verification_code(self) -> str | None:
        return self.result.verification_code if self.result else None


def count_attempt(ip: str) -> None:
    """Public verification attempts per client IP and hour (by code, by file, page)."""
    try:
        ratelimit.reserve_attempt(
            "verify-ip",
            rate_limit_address(ip),
            limit=settings.VERIFY_MAX_ATTEMPTS_PER_IP_PER_HOUR,
            lock_seconds=3600,
            window_seconds=3600,
        )
    except ratelimit.LockedOut as exc:
        raise RateLimited(
            exc.retry_after, "verify_rate_limited", _("Too many attempts. Try again later.")
        ) from exc


def _state(result: ResultDocument, today: dt.date) -> str:
    if result.revoked_at is not None:
        return "revoked"
    if result.valid_until is not None and result.valid_until < today:
        return "expired"
    return "valid"


def _today() -> dt.date:
    return timezone.localtime(timezone.now(), business_tz()).date()


def _issued() -> object:
    return ResultDocument.objects.select_related("dossier__agency", "dossier__procedure")


def verify_code(code: str) -> Verification:
    normalised = code.strip().upper()
    result = _issued().filter(verification_code=normalised).first()  # type: ignore[attr-defined]
    if result is None:
        raise NotFound("verification_not_found", _("No result has this verification code."))
    return Verification(genuine=True, state=_state(result, _today()), result=result)


def verify_file(data: bytes) -> Verification:
    """Genuine only if the signature holds today and these exact bytes were issued here."""
    try:
        read_signature(data)
    except ApiError as exc:  # unsigned, altered, untrusted, unreadable: an answer, not an error
        return Verification(genuine=False, state="invalid", problem=exc.code)
    digest = hashlib.sha256(data).hexdigest()
    result = _issued().filter(sha256=digest).first()  # type: ignore[attr-defined]
    if result is None:
        return Verification(genuine=False, state="unknown", problem="not_issued_here")
    return Verification(genuine=True, state=_state(result, _today()), result=result)


__all__ = ["Verification", "count_attempt", "verify_code", "verify_file", "verify_url"]
