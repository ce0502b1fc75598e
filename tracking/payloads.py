"""Every frame the WebSocket stream sends, defined once.

mobile_api_docs/asyncapi.yaml documents the same shapes for app developers;
tests/tracking/test_payloads.py keeps the two in step.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

ResyncReason = Literal["unknown_event", "expired"]
# What an `error` frame may say (asyncapi.yaml's ErrorFrame enum, held to it by a test).
ErrorCode = Literal["invalid_ticket", "dossier_not_found", "rate_limited", "unknown_frame"]


class EventFrameHead(TypedDict):
    """An event frame less its data, which comes last (the stream builds the head of
    an event once per language and writes the data's JSON after it)."""

    type: Literal["event"]
    id: int
    event_type: str
    dossier_id: str
    dossier_code: str | None
    status: int | None
    status_before: int | None
    time: str
    text: str


class EventFrame(EventFrameHead):
    """One dossier event, in log order."""

    data: dict[str, Any]


class HeartbeatFrame(TypedDict):
    type: Literal["heartbeat"]
    time: str


class ResyncFrame(TypedDict):
    """The resume point is unknown or too old: refetch by REST, then keep listening."""

    type: Literal["resync"]
    reason: ResyncReason
    message: str


class ErrorFrame(TypedDict):
    type: Literal["error"]
    code: ErrorCode
    message: str


Frame = EventFrame | HeartbeatFrame | ResyncFrame | ErrorFrame

# Close codes of the stream (also in mobile_api_docs/realtime.md).
CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008  # inbound flooding
CLOSE_TOO_BIG = 1009  # inbound frame over WS_MAX_INBOUND_BYTES
CLOSE_SERVER_ERROR = 1011
CLOSE_REPLACED = 4001  # the user opened more than WS_MAX_SOCKETS_PER_USER sockets
CLOSE_SESSION_REVOKED = 4003  # signed out or reset: sign in again
CLOSE_TICKET_INVALID = 4401  # unknown, used or expired ticket: get a new one
CLOSE_DOSSIER_NOT_FOUND = 4404  # the narrowed-to dossier is not visible to the user
