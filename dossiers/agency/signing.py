"""Agency request signatures.

Each request carries:

    X-Agency-Key: <key id>
    X-Timestamp:  <unix seconds>
    X-Event-Id:   <the sender's unique id of this operation>
    X-Signature:  hex(HMAC-SHA256(secret, METHOD \\n PATH \\n TIMESTAMP \\n EVENT_ID \\n
                                   hex(SHA256(body))))

PATH is the path with its query string exactly as sent (`/api/v1/agency/feed?cursor=x`).
The secrets are the credential's (credentials.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja.security import APIKeyHeader

from backend.errors import NotAuthenticated
from dossiers.agency.credentials import valid_secrets
from dossiers.models import Agency, AgencyCredential

KEY_HEADER = "X-Agency-Key"
TIMESTAMP_HEADER = "X-Timestamp"
EVENT_HEADER = "X-Event-Id"
SIGNATURE_HEADER = "X-Signature"


def string_to_sign(method: str, path: str, timestamp: str, event_id: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, timestamp, event_id, digest]).encode()


def sign(secret: str, method: str, path: str, timestamp: str, event_id: str, body: bytes) -> str:
    message = string_to_sign(method, path, timestamp, event_id, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _invalid_signature() -> NotAuthenticated:
    return NotAuthenticated("invalid_signature", _("The request signature is not valid."))


def _stale() -> NotAuthenticated:
    return NotAuthenticated(
        "stale_timestamp",
        _("X-Timestamp is missing or more than %(seconds)s seconds away from server time.")
        % {"seconds": settings.AGENCY_SIGNATURE_MAX_SKEW_SECONDS},
    )


def verify_request(request: HttpRequest) -> AgencyCredential:
    """The credential that signed `request`; 401 with a precise code otherwise."""
    cached = getattr(request, "agency_credential", None)
    if cached is not None:
        return cached
    key_id = request.headers.get(KEY_HEADER, "")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    event_id = request.headers.get(EVENT_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not key_id or not timestamp or not signature:
        raise NotAuthenticated(
            "signature_required",
            _("Sign the request: X-Agency-Key, X-Timestamp, X-Event-Id and X-Signature."),
        )
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise _stale() from exc
    if abs(time.time() - sent_at) > settings.AGENCY_SIGNATURE_MAX_SKEW_SECONDS:
        raise _stale()
    credential = (
        AgencyCredential.objects.select_related("agency")
        .filter(key_id=key_id, is_active=True, agency__is_active=True)
        .first()
    )
    now = timezone.now()
    candidates = valid_secrets(credential, now) if credential else []
    body = request.body
    expected = [
        sign(secret, request.method or "", request.get_full_path(), timestamp, event_id, body)
        for secret in candidates
    ]
    # Compare against every candidate (no early exit) so timing tells nothing.
    matched = False
    sent = signature.lower().encode()  # bytes: a non-ASCII header is a mismatch, not an error
    for value in expected:
        matched |= hmac.compare_digest(value.encode(), sent)
    if credential is None or not matched:
        raise _invalid_signature()
    AgencyCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
    request.agency_credential = credential  # type: ignore[attr-defined]
    return credential


class AgencySignature(APIKeyHeader):
    """ninja auth: the request is signed by an agency credential (sets request.auth)."""

    param_name = KEY_HEADER
    openapi_description = (
        "HMAC-SHA256 request signature: X-Agency-Key, X-Timestamp, X-Event-Id, X-Signature "
        "(see mobile_api_docs/agency-api.md)."
    )

    def __init__(self, *, required: bool = True) -> None:
        self.required = required
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> AgencyCredential | None:
        if key is None and not self.required:
            return None  # let the next authenticator (staff bearer) try
        return verify_request(request)


agency_signature = AgencySignature()
# For routes that also accept a staff member's bearer token.
agency_signature_optional = AgencySignature(required=False)


def current_agency(request: HttpRequest) -> Agency:
    credential: AgencyCredential = request.agency_credential  # type: ignore[attr-defined]
    return credential.agency


def agency_label(request: HttpRequest) -> str:
    credential: AgencyCredential = request.agency_credential  # type: ignore[attr-defined]
    return f"{credential.agency.code} ({credential.key_id})"
