"""`Idempotency-Key` for POSTs that create something.

Semantics of the IETF draft "The Idempotency-Key HTTP Header Field":
- the same key and the same request replays the first response (status and body);
- the same key with a different request is refused with 422;
- while the first request is still running, a twin gets 409;
- keys are scoped to the caller and kept IDEMPOTENCY_KEY_TTL_SECONDS (24 h).

Responses that a retry could change (5xx, 401, 403, 408, 409, 429) are not kept:
the key is released so the client may try again.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from ninja.decorators import decorate_view
from ninja.operation import Operation
from ninja.utils import contribute_operation_callback

from backend.errors import error_response
from backend.middleware import client_ip
from backend.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
NOT_KEPT_STATUSES = {401, 403, 408, 409, 429}

OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": (
        "A unique value (a UUID) per intended operation. Retrying with the same key "
        "and body replays the first response; a different body with the same key "
        "gets 422 `idempotency_key_reused`; a retry while the first is running gets "
        "409 `idempotency_request_in_flight`. Keys are kept 24 hours."
    ),
}


def caller_scope(request: HttpRequest) -> str:
    """Who the key belongs to: the signed-in user, else the client IP."""
    resolver = getattr(settings, "IDEMPOTENCY_CALLER_RESOLVER", "")
    if resolver:
        user_id = import_string(resolver)(request)
        if user_id is not None:
            return f"user:{user_id}"
    return f"ip:{client_ip(request)}"


def request_fingerprint(request: HttpRequest) -> str:
    """SHA-256 of what the request asks for: method, path and body.

    A multipart body is hashed by its fields and files' contents, not its raw
    bytes: a client that retries with a new multipart boundary still asks for
    the same thing.
    """
    digest = hashlib.sha256()
    digest.update(request.method.encode() if request.method else b"")
    digest.update(b"\n")
    digest.update(request.get_full_path().encode())
    digest.update(b"\n")
    if request.content_type == "multipart/form-data":
        for name in sorted(request.POST):
            for value in request.POST.getlist(name):
                digest.update(f"field:{name}={value}\n".encode())
        for name in sorted(request.FILES):
            for upload in request.FILES.getlist(name):
                digest.update(f"file:{name}:{upload.name}:{upload.size}:".encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
                digest.update(b"\n")
    else:
        digest.update(request.body)
    return digest.hexdigest()


def _claim(scope: str, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Insert the in-flight record, or return the existing one (created=False)."""
    now = timezone.now()
    lock_until = now + dt.timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS)
    expires = now + dt.timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                locked_until=lock_until,
                expires_at=expires,
            )
        return record, True
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.get(scope=scope, key=key)
    abandoned = existing.state == IdempotencyRecord.State.IN_FLIGHT and existing.locked_until < now
    if existing.expires_at < now or abandoned:
        # Take the stale record over atomically: only one retry may win it.
        taken = IdempotencyRecord.objects.filter(
            pk=existing.pk, state=existing.state, locked_until=existing.locked_until
        ).update(
            fingerprint=fingerprint,
            state=IdempotencyRecord.State.IN_FLIGHT,
            response_status=None,
            response_body=None,
            response_content_type="",
            locked_until=lock_until,
            expires_at=expires,
        )
        if taken:
            existing.refresh_from_db()
            return existing, True
        existing.refresh_from_db()
    return existing, False


def replay_response(
    status: int | None, body: bytes | None, content_type: str, replayed_header: str
) -> HttpResponse:
    """A stored response sent again, marked with `replayed_header: true`."""
    response = HttpResponse(
        bytes(body or b""), status=status or 200, content_type=content_type or "application/json"
    )
    response[replayed_header] = "true"
    return response


def _guarded(run: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    # This wraps ninja's Operation.run, outside the try/except that routes a
    # handler's exceptions to the API's exception handlers: a failure of our own
    # (database or cache down while claiming the key) goes to them explicitly, so
    # it gets the documented 503 and not Django's bare 500.
    operation = getattr(run, "__self__", None)

    @functools.wraps(run)
    def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
        try:
            return _run_once(run, request, kwargs)
        except Exception as exc:
            if operation is None:
                raise
            return operation.api.on_exception(request, exc)

    return wrapper


def _run_once(
    run: Callable[..., HttpResponseBase], request: HttpRequest, kwargs: dict[str, Any]
) -> HttpResponseBase:
    key = request.headers.get(HEADER)
    if key is None:
        return run(request, **kwargs)
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        return error_response(
            400,
            "invalid_idempotency_key",
            _("Idempotency-Key must be 1 to 255 printable ASCII characters."),
        )
    fingerprint = request_fingerprint(request)
    record, created = _claim(caller_scope(request), key, fingerprint)
    if not created:
        if record.fingerprint != fingerprint:
            return error_response(
                422,
                "idempotency_key_reused",
                _("This Idempotency-Key was already used for a different request."),
            )
        if record.state == IdempotencyRecord.State.IN_FLIGHT:
            return error_response(
                409,
                "idempotency_request_in_flight",
                _("A request with this Idempotency-Key is still being processed."),
                headers={"Retry-After": "1"},
            )
        return replay_response(
            record.response_status,
            record.response_body,
            record.response_content_type,
            REPLAYED_HEADER,
        )
    try:
        response = run(request, **kwargs)
    except BaseException:
        record.delete()
        raise
    status = response.status_code
    if status >= 500 or status in NOT_KEPT_STATUSES or not isinstance(response, HttpResponse):
        record.delete()
        return response
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.COMPLETED,
        response_status=status,
        response_body=response.content,
        response_content_type=response.get("Content-Type", "application/json"),
    )
    return response


def idempotent(op_func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a ninja route function (above or below `@router.post`)."""

    def document(operation: Operation) -> None:
        extra = dict(operation.openapi_extra or {})
        extra["parameters"] = [*extra.get("parameters", []), OPENAPI_PARAMETER]
        operation.openapi_extra = extra

    # decorate_view keeps the wrapper when ninja clones operations for an API.
    decorate_view(_guarded)(op_func)
    operation = getattr(op_func, "_ninja_operation", None)
    if operation is not None:
        document(operation)
    else:
        contribute_operation_callback(op_func, document)
    return op_func


def purge_expired() -> int:
    """Delete records past their retention; run periodically."""
    deleted, _counts = IdempotencyRecord.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
