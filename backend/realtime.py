"""Publishing to the channel layer from synchronous code, and session revocation.

`send_to_groups` is how actions reach open WebSockets once their transaction
commits (dossiers.events.publish_hint, `notify_sessions_revoked` below). With
Redis the channel layer is channels_redis's pub/sub layer, and a group message
is one PUBLISH: sync code sends it with a plain Redis client, all groups in one
round trip. `async_to_sync(layer.group_send)` would, outside a server's event
loop (a job worker, a management command), start a new event loop in a new
thread and open a new Redis connection for every call: milliseconds on the
path of every live update. The message is the layer's own (its serializer, its
channel names); tests/backend/test_realtime.py proves that a layer subscriber
receives it.

The WebSocket stream (tracking/consumers.py) puts every socket in the group of
its device session. Revoking a session (logout, refresh-token reuse, support
reset) calls `notify_sessions_revoked`, and the sockets of those sessions close
within moments of the commit. Lives here, below every app, so `auth` can call
it without importing `tracking`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, cast

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import transaction

from backend.redis import client_for

logger = logging.getLogger(__name__)

SESSION_REVOKED = "session.revoked"


def send_to_groups(groups: Sequence[str], message: dict[str, Any]) -> None:
    """Send `message` to each group; raises when the layer cannot take it."""
    layer = get_channel_layer()
    if layer is None or not groups:
        return
    config = cast(dict[str, Any], settings.CHANNEL_LAYERS["default"].get("CONFIG", {}))
    hosts = config.get("hosts", [])
    if isinstance(layer, RedisPubSubChannelLayer) and len(hosts) == 1:
        prefix = config.get("prefix", "asgi")
        payload = layer.serialize(message)
        host = hosts[0]
        address = str(host["address"] if isinstance(host, dict) else host)
        with client_for(address).pipeline(transaction=False) as pipe:
            for group in groups:
                pipe.publish(f"{prefix}__group__{group}", payload)
            pipe.execute()
        return

    async def send_all(target: BaseChannelLayer) -> None:
        for group in groups:
            await target.group_send(group, message)

    # Other layers (the embedded default's in-memory one): through the server's
    # event loop when called from a request, a new one otherwise.
    async_to_sync(send_all)(layer)


def session_group(session_id: uuid.UUID | str) -> str:
    """The channel-layer group of one device session's open sockets."""
    return f"session.{uuid.UUID(str(session_id)).hex}"


def notify_sessions_revoked(session_ids: Iterable[uuid.UUID | str]) -> None:
    """Once the current transaction commits, close the sockets of these sessions."""
    groups = [session_group(session_id) for session_id in session_ids]
    if groups:
        transaction.on_commit(lambda: _send_revoked(groups))


def _send_revoked(groups: list[str]) -> None:
    try:
        send_to_groups(groups, {"type": SESSION_REVOKED})
    except Exception:  # sockets also re-check their session on every heartbeat
        logger.warning("session revocation not published", exc_info=True)
