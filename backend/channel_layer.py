"""The project's Redis channel layers.

Pinned: this module subclasses private parts of channels_redis 4.3 (pyproject.toml
allows >=4.3,<4.4 only); check it against any other version before moving the pin.

`RedisPubSubChannelLayer` (the default, CHANNEL_LAYER=pubsub): channels_redis's
pub/sub layer, made to survive a Redis restart. channels_redis 4.3 keeps one
PubSub connection per process that two parties reconnect at the same time when
Redis restarts: its receive task (a read every 0.1 s) and a subscribe (a new
socket's group_add). redis-py reconnects inside whichever call fails (its
Retry calls the reconnect handler on every failure, whatever the retry count),
and the reconnection reads the server's replies (SELECT) while the other party
reads the same connection: "readuntil() called while another coroutine is
already waiting", a broken parser (KeyError: 0) logged every second, and the
first socket after the restart failing with HTTP 500. Here:

- the PubSub connection never reconnects by itself (no retry on its pool, and
  nobody uses it once it failed);
- whoever meets the failure (the receive task, or a subscribe) drops it, under
  the shard's lock: closes the PubSub and its pool, opens a fresh one and
  re-subscribes every channel of the shard, so hints flow again without any
  socket reconnecting. While Redis is down the receive task retries with a
  short backoff, logging the loss once and the recovery once;
- only the receive task reads the connection; subscribe and unsubscribe only
  write to it, and a new connection is read only once it is subscribed;
- a PubSub connection is only ever made by `_reconnect`, subscribed to every
  channel of the shard at once. (Before, a subscribe or a publish that came
  between the loss and the receive task's reconnection made a bare PubSub for
  itself alone: the receive task took it for the reconnection, and every
  channel subscribed before the loss stayed deaf until its socket closed, its
  hints arriving only with the heartbeat's look at the log.)

Messages published while Redis was down are lost: they are hints. Once the
connection is back, every listener of the process (below) is called once, so
each socket reads the event log at once instead of at its next heartbeat.

Listeners: `listen(group, callback)` subscribes the group's Redis channel like
`group_add`, but a message on it calls `callback()` right in the receive task,
instead of being decoded (msgpack) into the queue of each member channel, where
channels' consumer loop waits on it (`asyncio.wait` over its two sources, a new
task per message, then `dispatch`). The WebSocket stream's hints carry nothing
the socket needs (the event log is the truth), so tracking/consumers.py listens
for them: the hint's path from Redis to the socket's read of the log is one
function call. The receive task reads the connection itself, a blocking read
(redis-py's `get_message` polls every 0.1 s through its retry wrapper and a
timeout per read), and the connection speaks RESP2, whose pub/sub messages are
plain arrays (RESP3 pushes go through a handler that logs each message at debug
level, formatting it first).

`RedisChannelLayer` (CHANNEL_LAYER=core): channels_redis gives each process a
redis-py pool of at most 100 connections that fails at once
(`MaxConnectionsError`) when more are needed. One process holds thousands of
sockets, and a burst (a deploy or a network blip closing them all, then their
reconnections) runs thousands of group_add/group_discard at the same moment:
most failed, and a socket whose group_discard failed never ran its own
disconnect (ticker, per-user socket count). Here the pool keeps the same bound
but a caller waits for a free connection (up to `timeout` seconds,
CHANNEL_LAYER_POOL_TIMEOUT) instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer as BasePubSubChannelLayer
from channels_redis.pubsub import RedisPubSubLoopLayer as BasePubSubLoopLayer
from channels_redis.pubsub import RedisSingleShardConnection
from channels_redis.utils import _close_redis, _wrap_close, create_pool
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = logging.getLogger(__name__)

# Between two reconnection attempts of the receive task while Redis is down.
RECONNECT_DELAY_MIN = 0.1
RECONNECT_DELAY_MAX = 1.0


class RedisChannelLayer(BaseRedisChannelLayer):
    def create_pool(self, index: int) -> BlockingConnectionPool:
        host: dict[str, Any] = dict(self.hosts[index])
        return BlockingConnectionPool.from_url(host.pop("address"), **host)


def _is_open(pubsub: PubSub) -> bool:
    """False once the PubSub's connection was closed (redis-py would reconnect it)."""
    connection = pubsub.connection
    return connection is None or connection.is_connected


class ShardConnection(RedisSingleShardConnection):
    """One Redis host's PubSub connection, replaced as a whole when it fails."""

    host: dict[str, Any]
    _subscribed_to: set[str]
    _lock: asyncio.Lock
    _redis: Redis | None
    _pubsub: PubSub | None
    _receive_task: asyncio.Future[None] | None

    def __init__(self, host: dict[str, Any], channel_layer: Any) -> None:
        super().__init__(host, channel_layer)
        self._pubsub_pool: ConnectionPool | None = None
        self._lost = False  # the loss was logged; log the recovery once

    def _ensure_redis(self) -> None:
        if self._redis is None:
            # Commands (PUBLISH) on their own pool, with the host's retry: a
            # request/response connection taken from the pool is read by one
            # caller only, so its reconnection is safe.
            self._redis = Redis(connection_pool=create_pool(self.host))
        # Never a PubSub here: a bare one would hide the lost channels (see above).

    def _new_pubsub(self) -> PubSub:
        # No retry: redis-py would reconnect inside the failed call, while the
        # receive task may be reading the same connection. RESP2: a message is a
        # plain array (see the module's docstring).
        host = {**self.host, "retry": Retry(NoBackoff(), 0, supported_errors=()), "protocol": 2}
        host.pop("retry_on_error", None)
        host.pop("retry_on_timeout", None)
        self._pubsub_pool = create_pool(host)
        self._pubsub = PubSub(self._pubsub_pool, ignore_subscribe_messages=True)
        return self._pubsub

    async def _drop_pubsub(self) -> None:
        """Close the PubSub and its pool (the lock is held)."""
        pubsub, pool = self._pubsub, self._pubsub_pool
        self._pubsub = None
        self._pubsub_pool = None
        for close in (pubsub.aclose if pubsub else None, pool.aclose if pool else None):
            if close is not None:
                try:
                    await close()
                except Exception:  # the connection is dead already
                    logger.debug("closing a failed pub/sub connection", exc_info=True)

    async def _reconnect(self, extra: str | None = None) -> None:
        """A fresh PubSub subscribed to every channel of the shard (the lock is held).

        Raises when Redis cannot be reached; the PubSub is then None.
        """
        await self._drop_pubsub()
        pubsub = self._new_pubsub()
        channels = set(self._subscribed_to)
        if extra is not None:
            channels.add(extra)
        if not channels:
            return
        try:
            await pubsub.subscribe(*sorted(channels))
        except BaseException:
            await self._drop_pubsub()
            raise
        self._mark_restored(len(channels))

    def _mark_lost(self, error: BaseException) -> None:
        if not self._lost:
            self._lost = True
            logger.warning(
                "channel layer: Redis pub/sub connection lost (%s: %s); reconnecting",
                type(error).__name__,
                error,
            )

    def _mark_restored(self, channels: int) -> None:
        if self._lost:
            self._lost = False
            logger.info(
                "channel layer: Redis pub/sub connection restored, %d channels subscribed",
                channels,
            )
            # Messages published meanwhile are lost: each listener looks again.
            for name in list(self._subscribed_to):
                self._call_listeners(name)

    def _call_listeners(self, name: str) -> bool:
        """Call the listeners of channel `name`; whether it has any."""
        listeners = self.channel_layer.listeners.get(name)
        if not listeners:
            return False
        for callback in list(listeners):
            try:
                callback()
            except Exception:  # one listener's failure is not the others'
                logger.warning("channel layer: a listener of %s failed", name, exc_info=True)
        return True

    async def _deliver(self, pubsub: PubSub, response: Any) -> None:
        """One reply read from the PubSub connection: a message to its listeners and
        channels, anything else (a subscription's confirmation) to redis-py's PubSub."""
        if isinstance(response, list) and len(response) == 3 and response[0] == b"message":
            name = response[1].decode()
            listened = self._call_listeners(name)
            layer = self.channel_layer
            if not listened or name in layer.channels or name in layer.groups:
                self._receive_message({"channel": name, "data": response[2]})
            return
        await pubsub.handle_message(response, ignore_subscribe_messages=True)

    async def subscribe(self, channel: str) -> None:
        async with self._lock:
            if channel in self._subscribed_to:
                return
            self._ensure_redis()
            self._ensure_receiver()
            pubsub = self._pubsub
            if pubsub is not None and _is_open(pubsub) and pubsub.subscribed:
                try:
                    await pubsub.subscribe(channel)
                except Exception as error:  # a dead connection: replace it
                    self._mark_lost(error)
                else:
                    self._subscribed_to.add(channel)
                    self._mark_restored(len(self._subscribed_to))
                    return
            await self._reconnect(extra=channel)
            self._subscribed_to.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        async with self._lock:
            if channel not in self._subscribed_to:
                return
            self._subscribed_to.remove(channel)
            pubsub = self._pubsub
            if pubsub is None or pubsub.connection is None:
                return  # the next connection will not subscribe to it
            if not _is_open(pubsub):
                await self._drop_pubsub()  # the receive task reconnects
                return
            try:
                await pubsub.unsubscribe(channel)
            except Exception as error:
                self._mark_lost(error)
                await self._drop_pubsub()

    async def flush(self) -> None:
        async with self._lock:
            if self._receive_task is not None:
                self._receive_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._receive_task
                self._receive_task = None
            await self._drop_pubsub()
            if self._redis is not None:
                await _close_redis(self._redis)
                self._redis = None
            self._subscribed_to = set()
            self._lost = False

    async def _do_receiving(self) -> None:
        delay = 0.0
        while True:
            pubsub = self._pubsub
            if pubsub is None or not _is_open(pubsub):
                if not self._subscribed_to:
                    await asyncio.sleep(0.1)
                    continue
                await asyncio.sleep(delay)
                async with self._lock:
                    if self._pubsub is not pubsub or not self._subscribed_to:
                        continue  # replaced meanwhile (by a subscribe)
                    try:
                        await self._reconnect()
                    except Exception:
                        logger.debug("channel layer: Redis still unreachable", exc_info=True)
                        delay = min(max(delay * 2, RECONNECT_DELAY_MIN), RECONNECT_DELAY_MAX)
                    else:
                        delay = 0.0
                continue
            if not pubsub.subscribed:
                await asyncio.sleep(0.1)
                continue
            connection = pubsub.connection
            try:
                if connection is None:
                    raise ConnectionError("the pub/sub connection is gone")
                # Until a reply comes: a replaced or closed connection ends the read.
                response = await connection.read_response(
                    timeout=math.inf, disconnect_on_error=False, push_request=True
                )
            except Exception as error:
                async with self._lock:
                    if self._pubsub is pubsub:  # not replaced by a subscribe meanwhile
                        self._mark_lost(error)
                        await self._drop_pubsub()
                continue
            await self._deliver(pubsub, response)


Listener = Callable[[], object]


class RedisPubSubLoopLayer(BasePubSubLoopLayer):
    _shards: list[RedisSingleShardConnection]
    channels: dict[str, asyncio.Queue[Any]]
    groups: dict[str, set[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [ShardConnection(shard.host, self) for shard in self._shards]
        # A group's Redis channel -> the callbacks listening to it (a dict: ordered).
        self.listeners: dict[str, dict[Listener, None]] = {}

    async def listen(self, group: str, callback: Listener) -> None:
        """Call `callback()` on every message sent to `group` (see the module's docstring)."""
        name = self._get_group_channel_name(group)
        self.listeners.setdefault(name, {})[callback] = None
        await self._get_shard(name).subscribe(name)

    async def unlisten(self, group: str, callback: Listener) -> None:
        name = self._get_group_channel_name(group)
        callbacks = self.listeners.get(name)
        if callbacks is None or callback not in callbacks:
            return
        del callbacks[callback]
        if not callbacks:
            del self.listeners[name]
            if name not in self.groups:
                await self._get_shard(name).unsubscribe(name)

    async def group_discard(self, group: str, channel: str) -> None:
        """channels_redis's, but the group's Redis channel stays while it has listeners."""
        name = self._get_group_channel_name(group)
        members = self.groups.get(name, set())
        if channel not in members:
            return
        members.remove(channel)
        if not members:
            del self.groups[name]
            if name not in self.listeners:
                await self._get_shard(name).unsubscribe(name)


class RedisPubSubChannelLayer(BasePubSubChannelLayer):
    """channels_redis's pub/sub layer whose connection recovers from a Redis restart."""

    _args: tuple[Any, ...]
    _kwargs: dict[str, Any]
    _layers: dict[asyncio.AbstractEventLoop, RedisPubSubLoopLayer]

    async def listen(self, group: str, callback: Listener) -> None:
        await self._get_layer().listen(group, callback)

    async def unlisten(self, group: str, callback: Listener) -> None:
        await self._get_layer().unlisten(group, callback)

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = RedisPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer
