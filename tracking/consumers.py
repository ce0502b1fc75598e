"""The WebSocket stream of dossier events: /ws/v1/events.

Protocol (mobile_api_docs/realtime.md, mobile_api_docs/asyncapi.yaml):
connect with `?ticket=...` (from POST /api/v1/realtime/ticket), optionally
`&last_event_id=...` to resume and `&dossier_id=...` to narrow. The server
replays what was missed from the log, then streams live, sends a heartbeat
frame every WS_HEARTBEAT_SECONDS, and closes with a documented code.

Senders never broadcast: `dossiers.events.publish_hint` sends a hint to the
group of each recipient (dossiers.audience.user_group) and to the dossier's
group, which only sockets narrowed to that dossier join after an access check.
On a hint the socket reads the log from its cursor, filtered again by what the
user may see: the hint carries no data.

With the Redis pub/sub layer the socket listens to its group
(backend/channel_layer.py, `listen`): the hint calls `_hinted` in the layer's
receive task, which starts the socket's read of the log in a task of its own
(hints that come while it runs make it read once more), without channels'
queue and dispatch. Other layers (the embedded default's in-memory one, the
core layer) deliver the hint as a `dossier.event` message, as before.

This consumer is async, against the channels default of sync consumers: every
socket needs a timer (heartbeat, re-check of held events), which a sync
consumer could only get with a thread per socket. Every ORM call goes through
`database_sync_to_async` into tracking/stream.py; on PostgreSQL the read of the
log on each hint stays on the event loop (tracking/reader.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import aclose_old_connections, database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import connection
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from backend.realtime import session_group
from dossiers.audience import dossier_group, user_group
from tracking import payloads, socket_cap, stream, tickets
from tracking.payloads import (
    ErrorCode,
    ErrorFrame,
    Frame,
    HeartbeatFrame,
    ResyncFrame,
    ResyncReason,
)
from tracking.reader import Reader, settle_first

logger = logging.getLogger(__name__)


def origin_allowed(origin: str | None) -> bool:
    """Native apps send no Origin; a browser's must be on WS_ALLOWED_ORIGINS."""
    if origin is None:
        return True
    allowed = {item.rstrip("/").lower() for item in settings.WS_ALLOWED_ORIGINS}
    return origin.rstrip("/").lower() in allowed


class TokenBucket:
    """Inbound frames allowed per socket: `burst` at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        moment = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (moment - self.stamp) * self.rate)
        self.stamp = moment
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class EventStreamConsumer(AsyncWebsocketConsumer):
    subscription: stream.Subscription | None = None
    reader: Reader | None = None

    async def connect(self) -> None:
        self.subscription = None
        self.closing = False
        self.ticker: asyncio.Task[None] | None = None
        self.pump_lock = asyncio.Lock()
        self.wake = asyncio.Event()  # set when events are held: the ticker waits for them
        self.bucket = TokenBucket(settings.WS_INBOUND_RATE, settings.WS_INBOUND_BURST)
        self.dropped = 0
        self.listening: str | None = None  # the group whose hints call `_hinted`
        self.hint_task: asyncio.Task[None] | None = None
        self.hinted_again = False

        headers = dict(self.scope.get("headers", []))
        origin = headers.get(b"origin")
        if not origin_allowed(origin.decode("latin-1") if origin is not None else None):
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))

        grant = await self._redeem(_first(params, "ticket"))
        session = (
            await database_sync_to_async(stream.load_session)(grant.session_id) if grant else None
        )
        if grant is None or session is None or session.user_id != grant.user_id:
            await self._refuse(
                payloads.CLOSE_TICKET_INVALID,
                "invalid_ticket",
                _("The ticket is invalid, used or expired. Get a new one."),
            )
            return
        user = session.user

        dossier_id = grant.dossier_id
        requested = _first(params, "dossier_id")
        if requested:
            wanted = stream.parse_uuid(requested)
            visible = wanted is not None and await database_sync_to_async(stream.may_see_dossier)(
                user, wanted
            )
            if not visible or (dossier_id is not None and wanted != dossier_id):
                await self._refuse(
                    payloads.CLOSE_DOSSIER_NOT_FOUND,
                    "dossier_not_found",
                    _("Not found."),
                    language=user.language,
                )
                return
            dossier_id = wanted

        # Join the groups before reading the log: a hint sent meanwhile only makes
        # the socket look again (or comes before its first look, which sees it).
        audience = user_group(user.pk) if dossier_id is None else dossier_group(dossier_id)
        self.groups = [session_group(session.pk)]
        if hasattr(self.channel_layer, "listen"):
            self.listening = audience
            await self.channel_layer.listen(audience, self._hinted)
        else:
            self.groups.append(audience)
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)

        resync: ResyncReason | None = None
        if connection.vendor == "postgresql":
            await settle_first()  # once per process: the log's first settling waits
        position, seen = await database_sync_to_async(stream.live_position)(user, dossier_id)
        last_event_id = _first(params, "last_event_id")
        if last_event_id:
            resumed = await database_sync_to_async(stream.resume)(
                user, _int(last_event_id), dossier_id
            )
            if isinstance(resumed, tuple):
                position, seen = resumed
            else:
                resync = resumed
        self.subscription = stream.Subscription(
            user=user, session_id=session.pk, dossier_id=dossier_id, position=position, seen=seen
        )
        if connection.vendor == "postgresql":
            self.reader = Reader(self.subscription)
            await self.reader.open()
        # Accept only now: whatever commits once the app sees the socket open
        # is after the starting position.
        await self.accept()

        displaced = await sync_to_async(socket_cap.register_socket)(user.pk, self.channel_name)
        for channel in displaced:
            if channel != self.channel_name:
                await self.channel_layer.send(channel, {"type": "socket.replaced"})
        if self.channel_name in displaced:  # a cap of 0 sockets cannot be met
            await self._close(payloads.CLOSE_REPLACED)
            return

        if resync is not None:
            await self._send_frame(self._resync_frame(resync))
        await self.pump()
        self.ticker = asyncio.create_task(self.tick())

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """channels' own, each step run however the one before ended: cancelled
        midway (a server's shutdown cancels its sockets' tasks) or failing (Redis
        down), leaving the groups still lets go of the reader (`disconnect`), and the
        sync thread's database connections are still closed."""
        try:
            for group in self.groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        finally:
            try:
                await self.disconnect(message["code"])
            finally:
                await aclose_old_connections()
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        """Stop the ticker, then let go of the reader and the socket's place under the
        cap. Cancelled midway (a server's shutdown cancels its sockets' tasks), it
        still lets go of both, then ends cancelled."""
        self.closing = True
        try:
            if self.listening is not None:
                group, self.listening = self.listening, None
                with contextlib.suppress(Exception):
                    await self.channel_layer.unlisten(group, self._hinted)
        finally:
            try:
                if self.ticker is not None:
                    self.ticker.cancel()
                    # Its end, without its CancelledError: this task's own cancellation
                    # still comes through (a `suppress(CancelledError)` here swallowed it).
                    await asyncio.wait([self.ticker])
                if self.hint_task is not None:
                    # Not cancelled: a read of the log in flight would be cancelled on
                    # the server too (psycopg's cancel request). Closing, it sends
                    # nothing more.
                    await asyncio.wait({self.hint_task})  # its outcome is its own (logged)
            finally:
                try:
                    if self.reader is not None:
                        await self.reader.close()
                finally:
                    if self.subscription is not None:
                        with contextlib.suppress(Exception):
                            await sync_to_async(socket_cap.unregister_socket)(
                                self.subscription.user.pk, self.channel_name
                            )

    # --- inbound ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or self.subscription is None:
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_INBOUND_BYTES:
            await self._close(payloads.CLOSE_TOO_BIG)
            return
        if self.bucket.take():
            self.dropped = 0  # a client that slowed down is forgiven: refusals in a row count
        else:
            self.dropped += 1
            if self.dropped >= settings.WS_INBOUND_MAX_DROPPED:
                await self._close(payloads.CLOSE_POLICY_VIOLATION)
                return
            await self._send_frame(self._error("rate_limited", _("Too many frames. Slow down.")))
            return
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except (ValueError, RecursionError):  # not JSON, 2,000 nested lists, 5,000 digits
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self._send_frame(self._heartbeat())
            return
        await self._send_frame(
            self._error("unknown_frame", _('The server only understands {"type": "ping"}.'))
        )

    async def dispatch(self, message: dict[str, Any]) -> None:
        """channels' dispatch without its `aclose_old_connections` before every
        message: that is a hop to the sync thread and back (two thread wake-ups)
        on the path of every hint, for Django connections this consumer never
        uses on the event loop. Its ORM calls go through `database_sync_to_async`,
        which closes old connections around each call, and on PostgreSQL the
        log's reads use the reader's own connection."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except (StopConsumer, asyncio.CancelledError):
            raise
        except Exception:
            if message["type"] == "websocket.disconnect":
                raise
            # One socket's failure ends that socket with 1011; its disconnect then runs
            # and cleans up (groups, reader, socket cap, ticker), which a crash skipped.
            logger.warning("websocket %s failed", message["type"], exc_info=True)
            await self._close(payloads.CLOSE_SERVER_ERROR)

    # --- channel-layer messages ------------------------------------------------

    async def dossier_event(self, message: dict[str, Any]) -> None:
        """A hint from dossiers.events.publish_hint: something new is in the log."""
        subscription = self.subscription
        if subscription is None or self.closing:
            return
        if subscription.dossier_id is not None and message.get("dossier_id") != str(
            subscription.dossier_id
        ):
            return
        await self.pump()

    def _hinted(self) -> None:
        """A hint from the layer's listener (see the module's docstring): read the log
        in the socket's hint task, or once more after the read it is running."""
        if self.subscription is None or self.closing:
            return  # before the subscription: the connection's own first read follows
        task = self.hint_task
        if task is not None and not task.done():
            self.hinted_again = True
            return
        self.hint_task = asyncio.get_running_loop().create_task(self._pump_hinted())

    async def _pump_hinted(self) -> None:
        try:
            self.hinted_again = True
            while self.hinted_again and not self.closing:
                self.hinted_again = False
                await self.pump()
        except asyncio.CancelledError:
            raise
        except Exception:  # as `dispatch`: this socket ends with 1011, not the server
            logger.warning("websocket hint failed", exc_info=True)
            with contextlib.suppress(Exception):
                await self._close(payloads.CLOSE_SERVER_ERROR)

    async def session_revoked(self, message: dict[str, Any]) -> None:
        await self._close(payloads.CLOSE_SESSION_REVOKED)

    async def socket_replaced(self, message: dict[str, Any]) -> None:
        await self._close(payloads.CLOSE_REPLACED)

    # --- delivery --------------------------------------------------------------

    async def pump(self) -> None:
        """Send every final event after the cursor, in log order."""
        subscription = self.subscription
        if subscription is None:
            return
        async with self.pump_lock:
            while not self.closing:
                if self.reader is not None:
                    texts = await self.reader.pull(settings.WS_REPLAY_BATCH)
                else:
                    frames = await database_sync_to_async(stream.pull)(subscription)
                    texts = [json.dumps(frame, ensure_ascii=False) for frame in frames]
                for text in texts:
                    await self._send_text(text)
                if subscription.held:
                    self.wake.set()
                if len(texts) < settings.WS_REPLAY_BATCH:
                    return

    async def tick(self) -> None:
        """Heartbeats, session re-checks, and a second look at held events."""
        if self.subscription is None:  # set before the ticker starts
            raise RuntimeError("the ticker started before the subscription")
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + settings.WS_HEARTBEAT_SECONDS
        try:
            while not self.closing:
                self.wake.clear()
                wait = max(next_beat - loop.time(), 0)
                if self.subscription.held:
                    # Look again once the log is settled up to the held event (the
                    # reader's watch backs off from a few ms to WS_RECHECK_SECONDS).
                    if self.reader is not None:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.reader.until_final(), wait)
                    else:
                        await asyncio.sleep(min(wait, settings.WS_RECHECK_SECONDS))
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), wait)
                    if self.wake.is_set() and loop.time() < next_beat:
                        continue  # a read found events held: wait for them (above)
                if loop.time() >= next_beat:
                    next_beat = loop.time() + settings.WS_HEARTBEAT_SECONDS
                    # One cheap look per beat: an idle socket reads the log only
                    # when something was written since its last look (a lost hint).
                    live, news = await database_sync_to_async(stream.heartbeat_check)(
                        self.subscription
                    )
                    if not live:
                        await self._close(payloads.CLOSE_SESSION_REVOKED)
                        return
                    await self._send_frame(self._heartbeat())
                    if not news:
                        continue
                await self.pump()
        except asyncio.CancelledError:
            raise
        except Exception:  # a dead socket or database: end this socket, not the server
            logger.warning("websocket ticker stopped", exc_info=True)
            with contextlib.suppress(Exception):  # the socket may be gone already
                await self._close(payloads.CLOSE_SERVER_ERROR)

    # --- helpers ---------------------------------------------------------------

    async def _redeem(self, ticket: str) -> tickets.TicketGrant | None:
        try:
            return await sync_to_async(tickets.redeem_ticket)(ticket)
        except Exception:  # Redis down: the socket cannot work anyway
            logger.warning("websocket ticket could not be redeemed", exc_info=True)
            return None

    async def _refuse(
        self, code: int, error: ErrorCode, message: Promise, language: str | None = None
    ) -> None:
        """Accept only to say why, then close: tells a bad ticket from a network error."""
        await self.accept()
        await self._send_frame(self._error(error, message, language))
        await self._close(code)

    async def _send_frame(self, frame: Frame) -> None:
        await self._send_text(json.dumps(frame, ensure_ascii=False))

    async def _send_text(self, text: str) -> None:
        """One frame's JSON to the socket (what channels' `send(text_data=...)` sends)."""
        if not self.closing:
            await self.base_send({"type": "websocket.send", "text": text})

    async def _close(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        await self.close(code)

    def _language(self) -> str:
        return self.subscription.language if self.subscription else settings.LANGUAGE_CODE

    def _heartbeat(self) -> HeartbeatFrame:
        return {"type": "heartbeat", "time": stream.iso_time(timezone.now())}

    def _error(self, code: ErrorCode, message: Promise, language: str | None = None) -> ErrorFrame:
        with translation.override(language or self._language()):
            return {"type": "error", "code": code, "message": str(message)}

    def _resync_frame(self, reason: ResyncReason) -> ResyncFrame:
        message = (
            _("This position in the history is unknown. Reload the dossiers.")
            if reason == "unknown_event"
            else _("This position in the history is too old. Reload the dossiers.")
        )
        with translation.override(self._language()):
            return {"type": "resync", "reason": reason, "message": str(message)}


def _first(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name) or [""]
    return values[0]


def _int(value: str) -> int:
    """A non-negative id written in ASCII digits (a bigint has at most 19), else -1
    (`int` also reads "١", "+1", " 5 " and "1_0")."""
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        return -1
    return int(value)
