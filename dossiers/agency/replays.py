"""An agency action runs at most once per X-Event-Id, per agency.

Sending the same event id again returns the first answer (status and body, even an
error such as 409) with `X-Event-Replayed: true` and changes nothing; the same id for
a different request answers 422 `event_id_reused`. Answers are kept
AGENCY_REQUEST_RETENTION_DAYS. Stored by backend/idempotency.py (scope
`agency:<agency id>`), in one transaction with the action: a concurrent twin waits
for the first to commit, then gets its answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from backend.errors import error_response
from backend.idempotency import Policy, once_per_key
from dossiers.agency.signing import EVENT_HEADER, verify_request

REPLAYED_HEADER = "X-Event-Replayed"


def agency_scope(request: HttpRequest) -> str:
    """Event ids belong to the agency that signed (401 when nobody did)."""
    return f"agency:{verify_request(request).agency_id}"


def _invalid_event_id() -> HttpResponse:
    return error_response(
        400, "invalid_event_id", _("X-Event-Id must be 1 to 128 printable ASCII characters.")
    )


def _event_id_reused() -> HttpResponse:
    return error_response(
        422, "event_id_reused", _("This X-Event-Id was already used for a different request.")
    )


EVENT_ID = Policy(
    header=EVENT_HEADER,
    replayed_header=REPLAYED_HEADER,
    max_key_length=128,
    scope=agency_scope,
    ttl_seconds=lambda: settings.AGENCY_REQUEST_RETENTION_DAYS * 24 * 3600,
    invalid_key=_invalid_event_id,
    key_reused=_event_id_reused,
    optional=False,
    # Every answer is final for the sender (a 409 stays a 409); only 5xx may be retried.
    not_kept=frozenset(),
    whole_transaction=True,
)


def once_per_event(op_func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an agency action route: the same X-Event-Id runs it at most once."""
    return once_per_key(EVENT_ID, op_func)
