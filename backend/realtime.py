"""Telling open WebSockets about account changes that end them.

The WebSocket stream (tracking/consumers.py) puts every socket in the group of
its device session. Revoking a session (logout, refresh-token reuse, support
reset) calls `notify_sessions_revoked`, and the sockets of those sessions close
within moments of the commit. Lives here, below every app, so `auth` can call
it without importing `tracking`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

SESSION_REVOKED = "session.revoked"


def session_group(session_id: uuid.UUID | str) -> str:
    """The channel-layer group of one device session's open sockets."""
    return f"session.{uuid.UUID(str(session_id)).hex}"


def notify_sessions_revoked(session_ids: Iterable[uuid.UUID | str]) -> None:
    """Once the current transaction commits, close the sockets of these sessions."""
    groups = [session_group(session_id) for session_id in session_ids]
    if groups:
        transaction.on_commit(lambda: _send_revoked(groups))


def _send_revoked(groups: list[str]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, {"type": SESSION_REVOKED})
        except Exception:  # sockets also re-check their session on every heartbeat
            logger.warning("session revocation not published to %s", group, exc_info=True)
            return
