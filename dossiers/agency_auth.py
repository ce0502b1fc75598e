"""Agency back-office credentials and request signatures.

Each request carries:

    X-Agency-Key: <key id>
    X-Timestamp:  <unix seconds>
    X-Event-Id:   <the sender's unique id of this operation>
    X-Signature:  hex(HMAC-SHA256(secret, METHOD \\n PATH \\n TIMESTAMP \\n EVENT_ID \\n
                                   hex(SHA256(body))))

PATH is the path with its query string exactly as sent (`/api/v1/agency/feed?cursor=x`).
Secrets are stored encrypted (Fernet, key derived from SECRET_KEY) because the
server needs them back to compute the HMAC. A rotation keeps the previous secret
valid for AGENCY_PREVIOUS_SECRET_HOURS. An operation sent twice with the same
event id returns the first answer and changes nothing (`AgencyRequest`).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja.decorators import decorate_view
from ninja.security import APIKeyHeader

from backend.errors import ApiError, NotAuthenticated, NotFound, api_error_response, error_response
from backend.idempotency import replay_response, request_fingerprint
from dossiers.models import Agency, AgencyCredential, AgencyRequest, Dossier

KEY_HEADER = "X-Agency-Key"
TIMESTAMP_HEADER = "X-Timestamp"
EVENT_HEADER = "X-Event-Id"
SIGNATURE_HEADER = "X-Signature"
REPLAYED_HEADER = "X-Event-Replayed"


# --- Secrets at rest ------------------------------------------------------------------


def _fernet_for(secret_key: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"agency-credential-secrets"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return MultiFernet([_fernet_for(key) for key in keys])


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def create_credential(agency: Agency, label: str = "") -> tuple[AgencyCredential, str]:
    """A new key for `agency`. The secret is returned once and never shown again."""
    secret = secrets.token_urlsafe(32)
    credential = AgencyCredential.objects.create(
        agency=agency,
        key_id=f"ak_{secrets.token_hex(8)}",
        label=label,
        secret_encrypted=encrypt_secret(secret),
    )
    return credential, secret


@transaction.atomic
def rotate_credential(credential: AgencyCredential) -> str:
    """Issue a new secret; the current one stays valid for the grace period."""
    locked = AgencyCredential.objects.select_for_update().get(pk=credential.pk)
    secret = secrets.token_urlsafe(32)
    now = timezone.now()
    locked.previous_secret_encrypted = locked.secret_encrypted
    locked.previous_valid_until = now + dt.timedelta(hours=settings.AGENCY_PREVIOUS_SECRET_HOURS)
    locked.secret_encrypted = encrypt_secret(secret)
    locked.rotated_at = now
    locked.save()
    credential.refresh_from_db()
    return secret


def retire_previous_secret(credential: AgencyCredential) -> None:
    AgencyCredential.objects.filter(pk=credential.pk).update(
        previous_secret_encrypted="",  # nosec B106 # clearing the secret, not setting one
        previous_valid_until=None,
    )


def _valid_secrets(credential: AgencyCredential, now: dt.datetime) -> list[str]:
    tokens = [credential.secret_encrypted]
    if (
        credential.previous_secret_encrypted
        and credential.previous_valid_until
        and credential.previous_valid_until > now
    ):
        tokens.append(credential.previous_secret_encrypted)
    result = []
    for token in tokens:
        try:
            result.append(decrypt_secret(token))
        except InvalidToken:  # encrypted under a key no longer configured
            continue
    return result


# --- Signatures -----------------------------------------------------------------------


def string_to_sign(method: str, path: str, timestamp: str, event_id: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, timestamp, event_id, digest]).encode()


def sign(secret: str, method: str, path: str, timestamp: str, event_id: str, body: bytes) -> str:
    message = string_to_sign(method, path, timestamp, event_id, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _invalid_signature() -> NotAuthenticated:
    return NotAuthenticated("invalid_signature", _("The request signature is not valid."))


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
    candidates = _valid_secrets(credential, now) if credential else []
    body = request.body
    expected = [
        sign(secret, request.method or "", request.get_full_path(), timestamp, event_id, body)
        for secret in candidates
    ]
    # Compare against every candidate (no early exit) so timing tells nothing.
    matched = False
    for value in expected:
        matched |= hmac.compare_digest(value, signature.lower())
    if credential is None or not matched:
        raise _invalid_signature()
    AgencyCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
    request.agency_credential = credential  # type: ignore[attr-defined]
    return credential


def _stale() -> NotAuthenticated:
    return NotAuthenticated(
        "stale_timestamp",
        _("X-Timestamp is missing or more than %(seconds)s seconds away from server time.")
        % {"seconds": settings.AGENCY_SIGNATURE_MAX_SKEW_SECONDS},
    )


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


# --- Access -----------------------------------------------------------------------------


def agency_dossiers(agency: Agency) -> QuerySet[Dossier]:
    """What an agency may see: its own dossiers, once submitted (never drafts)."""
    return Dossier.objects.filter(agency=agency).exclude(status=Dossier.Status.DRAFT)


def access_agency_dossier(agency: Agency, reference: str) -> Dossier:
    """The agency's dossier by code or id; 404 for anyone else's (no existence leak)."""
    queryset = agency_dossiers(agency).select_related("procedure", "agency", "applicant")
    try:
        key = uuid.UUID(reference)
    except ValueError:
        dossier = queryset.filter(code=reference).first()
    else:
        dossier = queryset.filter(pk=key).first()
    if dossier is None:
        raise NotFound()
    return dossier


# --- Replays by event id ------------------------------------------------------------------


def _once_per_event(run: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @functools.wraps(run)
    def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
        try:
            credential = verify_request(request)
        except ApiError as exc:
            return api_error_response(request, exc)
        event_id = request.headers.get(EVENT_HEADER, "")
        if not 1 <= len(event_id) <= 128 or not event_id.isascii() or not event_id.isprintable():
            return error_response(
                400,
                "invalid_event_id",
                _("X-Event-Id must be 1 to 128 printable ASCII characters."),
            )
        fingerprint = request_fingerprint(request)
        # One transaction for the whole operation: a twin request with the same
        # event id waits on the unique index until this one commits, then replays.
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = AgencyRequest.objects.create(
                        agency_id=credential.agency_id, event_id=event_id, fingerprint=fingerprint
                    )
            except IntegrityError:
                existing = AgencyRequest.objects.get(
                    agency_id=credential.agency_id, event_id=event_id
                )
                if existing.fingerprint != fingerprint:
                    return error_response(
                        422,
                        "event_id_reused",
                        _("This X-Event-Id was already used for a different request."),
                    )
                return replay_response(
                    existing.response_status,
                    existing.response_body,
                    existing.response_content_type,
                    REPLAYED_HEADER,
                )
            response = run(request, **kwargs)
            if response.status_code >= 500 or not isinstance(response, HttpResponse):
                transaction.set_rollback(True)
                return response
            record.response_status = response.status_code
            record.response_body = response.content
            record.response_content_type = response.get("Content-Type", "application/json")
            record.save(update_fields=["response_status", "response_body", "response_content_type"])
            return response

    return wrapper


def once_per_event(op_func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an agency action route: the same X-Event-Id runs it at most once."""
    decorate_view(_once_per_event)(op_func)
    return op_func


def purge_old_requests() -> int:
    cutoff = timezone.now() - dt.timedelta(days=settings.AGENCY_REQUEST_RETENTION_DAYS)
    deleted, _counts = AgencyRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
