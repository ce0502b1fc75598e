"""Realtime tickets: the way into the WebSocket stream (/ws/v1/events)."""

from __future__ import annotations

import logging
import uuid

import redis
from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Field, Router, Schema, Status

from auth.bearer import bearer, current_session, current_user
from backend.errors import ErrorOut, RateLimited, ServiceUnavailable
from dossiers.access import access_dossier
from tracking import tickets

logger = logging.getLogger(__name__)

router = Router(tags=["realtime"])

STREAM_PATH = "/ws/v1/events"


class TicketIn(Schema):
    dossier_id: uuid.UUID | None = None


class TicketOut(Schema):
    ticket: str
    expires_in: int
    url: str = Field(
        description="Absolute URL of the stream with this ticket (`wss://` behind TLS, "
        "`ws://` on a development server); add `&last_event_id=` to resume"
    )
    heartbeat_seconds: float


def stream_url(request: HttpRequest, ticket: str) -> str:
    """The socket's absolute URL (`ws://` or `wss://`, as the request came), like the
    absolute download URLs of the API."""
    http_url = request.build_absolute_uri(f"{STREAM_PATH}?ticket={ticket}")
    return "ws" + http_url.removeprefix("http")


@router.post(
    "/ticket",
    auth=bearer,
    response={
        201: TicketOut,
        401: ErrorOut,
        404: ErrorOut,
        422: ErrorOut,
        429: ErrorOut,
        503: ErrorOut,
    },
    summary="Get a one-time ticket to open the WebSocket stream",
)
def create_ticket(request: HttpRequest, payload: TicketIn | None = None) -> Status:
    """A random ticket, valid for `expires_in` seconds (at most 60) and usable once.

    Open `wss://<host>/ws/v1/events?ticket=<ticket>` with it (add
    `last_event_id` to resume). With `dossier_id`, the socket only carries that
    dossier's events. Not idempotent on purpose: a retry just gets a new ticket.
    """
    user = current_user(request)
    session = current_session(request)
    dossier_id = payload.dossier_id if payload else None
    if dossier_id is not None:
        access_dossier(user, dossier_id)
    try:
        count, retry_after = tickets.count_issue(user.pk)
        if count > settings.WS_TICKETS_PER_MINUTE:
            raise RateLimited(retry_after)
        ticket = tickets.issue_ticket(user.pk, session.pk, dossier_id)
    except redis.RedisError as exc:
        logger.warning("realtime ticket not issued: redis unavailable")
        raise ServiceUnavailable(
            "realtime_unavailable", _("Live updates are unavailable right now. Try again later.")
        ) from exc
    return Status(
        201,
        TicketOut(
            ticket=ticket,
            expires_in=tickets.ticket_ttl(),
            url=stream_url(request, ticket),
            heartbeat_seconds=settings.WS_HEARTBEAT_SECONDS,
        ),
    )
