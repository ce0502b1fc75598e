"""`Idempotency-Key` for POSTs that create something.

Semantics of the IETF draft "The Idempotency-Key HTTP Header Field":
- the same key and the same request replays the first response (status and body),
  but for what the caller may do *now* with what it created (`can_remove` of an
  attachment, `can_change` of a booking): a route that answers such a field reads it
  again for the replay (`refresh`), so a replay never offers what the caller may no
  longer do (the dossier was submitted meanwhile, the parcel picked up);
- the same key with a different request is refused with 422;
- while the first request is still running, a twin gets 409;
- keys are scoped to the caller and kept IDEMPOTENCY_KEY_TTL_SECONDS (24 h);
- the route's authentication runs first, always: a revoked or missing credential
  gets its 401 before any key is looked at, so a stored answer is never replayed
  to someone who may no longer call the route (after logout, for instance).

Responses that a retry could change (5xx, 401, 403, 408, 409, 429) are not kept:
the key is released so the client may try again.

The same machinery keeps the agency API's replays by X-Event-Id (`Policy`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja.decorators import decorate_view
from ninja.operation import Operation
from ninja.utils import contribute_operation_callback

from backend.commits import commit_without_waiting_for_disk
from backend.errors import error_response
from backend.middleware import client_ip
from backend.models import IdempotencyRecord
from backend.times import ApiJSONRenderer

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
    """Who the key belongs to: the authenticated caller, else the client IP.

    Read after the route's authentication (see `_guarded`): `request.auth` is the
    user that the credential proved, never a claim read from an unchecked token.
    """
    caller_id = getattr(getattr(request, "auth", None), "pk", None)
    if caller_id is not None:
        return f"user:{caller_id}"
    # The full address, not the network the rate limits count by: a neighbour in the
    # same IPv6 /64 who learnt a key must not be replayed this caller's answer.
    return f"ip:{client_ip(request)}"


def request_fingerprint(request: HttpRequest) -> str:
    """SHA-256 of what the request asks for: method, path and body.

    A multipart body is hashed by its fields and files' contents, not its raw
    bytes: a client that retries with a new multipart boundary, or writes the same
    bytes to a new temporary file name, still asks for the same thing. (The file
    name is a label: the server never trusts it for anything, see attachments.)
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
                digest.update(f"file:{name}:{upload.size}:".encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
                digest.update(b"\n")
    else:
        digest.update(request.body)
    return digest.hexdigest()


# A route's update of its replayed answer: (the request, the route's path arguments,
# the stored JSON of a 2xx answer) -> the JSON to send. Only for what the caller may do
# now (a flag the app shows or hides a button by); the rest stays the first answer.
Refresh = Callable[[HttpRequest, dict[str, Any], Any], Any]


@dataclass(frozen=True)
class Policy:
    """How one family of routes names and keeps its operations.

    `Idempotency-Key` (below) is the default; the agency API keys its actions by
    the sender's X-Event-Id with its own scope, codes and retention
    (dossiers/agency/replays.py). Both store in IdempotencyRecord.
    """

    header: str
    replayed_header: str
    max_key_length: int
    # Who the key belongs to; may raise an ApiError (e.g. 401) before the key is read.
    scope: Callable[[HttpRequest], str]
    # How long a completed answer is kept.
    ttl_seconds: Callable[[], int]
    invalid_key: Callable[[], HttpResponse]
    key_reused: Callable[[], HttpResponse]
    # Without the header, run the route anyway (True) or answer `invalid_key`.
    optional: bool = True
    # Answers a retry could change: not kept, the key is released.
    not_kept: frozenset[int] = frozenset(NOT_KEPT_STATUSES)
    # Run the claim, the route and the stored answer in one transaction: a twin
    # waits on the unique index until the first commits, then replays its answer
    # (no 409 in flight), and a crash keeps neither the effect nor the record.
    whole_transaction: bool = False


# A twin whose insert failed may find no record: its holder got an answer that
# is not kept and released the key in between. It tries the insert again; after
# this many rounds lost to other twins it is told the key is in flight.
CLAIM_ATTEMPTS = 3


def _claim(
    scope: str, key: str, fingerprint: str, ttl_seconds: int
) -> tuple[IdempotencyRecord | None, bool]:
    """Insert the in-flight record, or return the existing one (created=False).

    None (not created) when the key kept changing hands: treat it as in flight.
    """
    # The claim commits on its own, without waiting for the disk, unless it is part
    # of the caller's transaction (`Policy.whole_transaction`), whose commit is not ours.
    own_transaction = not transaction.get_connection().in_atomic_block
    for _attempt in range(CLAIM_ATTEMPTS):
        now = timezone.now()
        lock_until = now + dt.timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS)
        expires = now + dt.timedelta(seconds=ttl_seconds)
        try:
            with transaction.atomic():
                if own_transaction:
                    # Pending state (see `_claim_and_run`): its loss in a crash takes
                    # everything later with it, the route's action and answer too.
                    commit_without_waiting_for_disk()
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
        existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if existing is None:
            continue  # released since our insert failed: claim it again
        abandoned = (
            existing.state == IdempotencyRecord.State.IN_FLIGHT and existing.locked_until < now
        )
        if not (existing.expires_at < now or abandoned):
            return existing, False
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
        current = IdempotencyRecord.objects.filter(pk=existing.pk).first()
        if current is None:
            continue  # the winner of the takeover released it already (or a purge ran)
        return current, bool(taken)
    return None, False


def replay_response(
    status: int | None, body: bytes | None, content_type: str, replayed_header: str
) -> HttpResponse:
    """A stored response sent again, marked with `replayed_header: true`."""
    response = HttpResponse(
        bytes(body or b""), status=status or 200, content_type=content_type or "application/json"
    )
    response[replayed_header] = "true"
    return response


def _refreshed(
    refresh: Refresh,
    operation: Operation | None,
    request: HttpRequest,
    kwargs: dict[str, Any],
    response: HttpResponse,
) -> HttpResponse:
    """The replayed `response` with the route's `refresh` applied to its JSON body."""
    renderer = operation.api.renderer if operation is not None else ApiJSONRenderer()
    fresh = refresh(request, kwargs, json.loads(response.content))
    response.content = renderer.render(request, fresh, response_status=response.status_code)
    return response


def _guarded(
    policy: Policy, refresh: Refresh | None = None, *, one_transaction: bool = False
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    def decorate(run: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        # This wraps ninja's Operation.run, outside the try/except that routes a
        # handler's exceptions to the API's exception handlers: a failure of our own
        # (database or cache down while claiming the key, a refused signature while
        # resolving the scope) goes to them explicitly, so it gets the documented
        # answer and not Django's bare 500.
        operation = getattr(run, "__self__", None)

        @functools.wraps(run)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
            if operation is not None and operation.auth_callbacks:
                # Authenticate before anything is claimed or replayed (ninja would
                # only do it inside `run`). The authenticators cache what they
                # proved on the request, so `run` does not check twice.
                refused = operation._run_authentication(request)
                if refused is not None:
                    return refused
            refreshed = (
                None
                if refresh is None
                else functools.partial(_refreshed, refresh, operation, request, kwargs)
            )
            try:
                return _run_once(policy, run, request, kwargs, refreshed, one_transaction)
            except Exception as exc:
                if operation is None:
                    raise
                return operation.api.on_exception(request, exc)

        return wrapper

    return decorate


def _run_once(
    policy: Policy,
    run: Callable[..., HttpResponseBase],
    request: HttpRequest,
    kwargs: dict[str, Any],
    refreshed: Callable[[HttpResponse], HttpResponse] | None = None,
    one_transaction: bool = False,
) -> HttpResponseBase:
    key = request.headers.get(policy.header)
    if key is None and policy.optional:
        return run(request, **kwargs)
    scope = policy.scope(request)
    if (
        key is None
        or not 1 <= len(key) <= policy.max_key_length
        or not key.isascii()
        or not key.isprintable()
    ):
        return policy.invalid_key()
    fingerprint = request_fingerprint(request)
    if policy.whole_transaction:
        # Opened after the scope is known: resolving it (an agency's signature check)
        # writes nothing that a twin would have to wait for.
        with transaction.atomic():
            return _claim_and_run(policy, run, request, kwargs, scope, key, fingerprint, refreshed)
    return _claim_and_run(
        policy, run, request, kwargs, scope, key, fingerprint, refreshed, one_transaction
    )


def _claim_and_run(
    policy: Policy,
    run: Callable[..., HttpResponseBase],
    request: HttpRequest,
    kwargs: dict[str, Any],
    scope: str,
    key: str,
    fingerprint: str,
    refreshed: Callable[[HttpResponse], HttpResponse] | None = None,
    one_transaction: bool = False,
) -> HttpResponseBase:
    """Claim the key, then run the route once and keep its answer; or answer a twin.

    The claim commits on its own (a twin sees it and gets 409 while the route runs).
    The answer is kept by a statement of its own after the route, or, with
    `one_transaction` (a route that is one database transaction and nothing else),
    in the route's transaction: one commit for both, and a crash keeps both or
    neither (never an action done whose key a retry would find still in flight).
    """
    record, created = _claim(scope, key, fingerprint, policy.ttl_seconds())
    if record is None or not created:
        if record is not None and record.fingerprint != fingerprint:
            return policy.key_reused()
        if record is None or record.state == IdempotencyRecord.State.IN_FLIGHT:
            return error_response(
                409,
                "idempotency_request_in_flight",
                _("A request with this Idempotency-Key is still being processed."),
                headers={"Retry-After": "1"},
            )
        replay = replay_response(
            record.response_status,
            record.response_body,
            record.response_content_type,
            policy.replayed_header,
        )
        if refreshed is not None and 200 <= replay.status_code < 300:
            return refreshed(replay)
        return replay
    try:
        if one_transaction and not policy.whole_transaction:
            # The route's own atomic blocks become savepoints of this one: a 4xx
            # rolls back to its savepoint and is kept; an answer not kept rolls back
            # everything the route did (the retry runs it again).
            with transaction.atomic():
                response = run(request, **kwargs)
                kept = _keep(policy, record, response, rollback=True)
        else:
            response = run(request, **kwargs)
            kept = _keep(policy, record, response, rollback=policy.whole_transaction)
    except BaseException:
        if not policy.whole_transaction:  # else the rollback removes it
            record.delete()
        raise
    if not kept and not policy.whole_transaction:
        record.delete()  # released: the retry may claim it again
    return response


def _keep(
    policy: Policy, record: IdempotencyRecord, response: HttpResponseBase, *, rollback: bool
) -> bool:
    """Store a 2xx or 4xx answer on the claimed record; False for an answer a retry
    could change (not kept), after marking the transaction for rollback if asked."""
    status = response.status_code
    if status >= 500 or status in policy.not_kept or not isinstance(response, HttpResponse):
        if rollback:
            transaction.set_rollback(True)
        return False
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.COMPLETED,
        response_status=status,
        response_body=response.content,
        response_content_type=response.get("Content-Type", "application/json"),
    )
    return True


def _invalid_idempotency_key() -> HttpResponse:
    return error_response(
        400,
        "invalid_idempotency_key",
        _("Idempotency-Key must be 1 to 255 printable ASCII characters."),
    )


def _idempotency_key_reused() -> HttpResponse:
    return error_response(
        422,
        "idempotency_key_reused",
        _("This Idempotency-Key was already used for a different request."),
    )


IDEMPOTENCY_KEY = Policy(
    header=HEADER,
    replayed_header=REPLAYED_HEADER,
    max_key_length=255,
    scope=caller_scope,
    ttl_seconds=lambda: settings.IDEMPOTENCY_KEY_TTL_SECONDS,
    invalid_key=_invalid_idempotency_key,
    key_reused=_idempotency_key_reused,
)


def once_per_key(
    policy: Policy,
    op_func: Callable[..., Any],
    refresh: Refresh | None = None,
    *,
    one_transaction: bool = False,
) -> Callable[..., Any]:
    """Decorate a ninja route function: it runs at most once per key of `policy`; a
    replay of a 2xx answer goes through `refresh`, if given (see `Refresh`); with
    `one_transaction`, its answer is kept in its transaction (see `_claim_and_run`)."""
    # decorate_view keeps the wrapper when ninja clones operations for an API.
    decorate_view(_guarded(policy, refresh, one_transaction=one_transaction))(op_func)
    return op_func


F = TypeVar("F", bound=Callable[..., Any])


@overload
def idempotent(
    op_func: F, *, refresh: Refresh | None = None, one_transaction: bool = False
) -> F: ...


@overload
def idempotent(
    op_func: None = None, *, refresh: Refresh | None = None, one_transaction: bool = False
) -> Callable[[F], F]: ...


def idempotent(
    op_func: F | None = None, *, refresh: Refresh | None = None, one_transaction: bool = False
) -> F | Callable[[F], F]:
    """Decorate a ninja route function (above or below `@router.post`): `@idempotent`,
    or `@idempotent(refresh=...)` for a route whose answer says what the caller may do
    with what it created (see `Refresh`).

    `one_transaction=True` for a route that is one database transaction and nothing
    else (no call to another service, no file written, no commit it relies on before
    answering): its answer is then kept in that transaction, one commit instead of
    two, and exactly once even across a crash (see `_claim_and_run`).
    """
    if op_func is None:
        return functools.partial(idempotent, refresh=refresh, one_transaction=one_transaction)

    def document(operation: Operation) -> None:
        extra = dict(operation.openapi_extra or {})
        extra["parameters"] = [*extra.get("parameters", []), OPENAPI_PARAMETER]
        operation.openapi_extra = extra

    once_per_key(IDEMPOTENCY_KEY, op_func, refresh, one_transaction=one_transaction)
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
