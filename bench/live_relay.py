"""The live update row's bare relay: the smallest Python server doing a frame's three hops.

A bare ASGI app (no Django, no channels), served by the same uvicorn with the
Procfile's flags as the project (bench/benchmarks/live_update.py starts it as
`bench.live_relay:relay`). A WebSocket connects with `?channel=NAME`, a Redis
channel; the relay subscribes to it (redis-py asyncio with its C parser,
hiredis, over RESP2, as the project's channel layer), then accepts. For each
message, a hint as the project's actions publish it (`dossiers.events.publish_hint`
through the channel layer: msgpack of {"type", "event_id", "dossier_id"}), it
reads that one event row by id from PostgreSQL (psycopg async, one connection
in autocommit, statements prepared, as tracking/reader.py) and sends it as one
JSON text frame. Nothing else: no ticket, no access check, no cursor, no
ordering of the log, no heartbeat; what the project does beyond this is what
its code adds over its stack.

The database and Redis are the environment's DATABASE_URL and REDIS_URL
(`make_relay` takes them as arguments, for the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import msgpack
import psycopg
import redis.asyncio as aioredis

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# The columns of a frame of the project's stream (tracking/stream.py EVENT_COLUMNS).
EVENT_SQL = (
    "SELECT id, type, status_before, status_after, created_at, data, dossier_id "
    "FROM tracking_dossierevent WHERE id = %s"
)


def event_frame(row: tuple[Any, ...]) -> str:
    """One event row as the frame's JSON text."""
    event_id, event_type, before, after, created_at, data, dossier_id = row
    return json.dumps(
        {
            "type": "event",
            "id": event_id,
            "event_type": event_type,
            "status_before": before,
            "status_after": after,
            "time": created_at.isoformat(),
            "data": data,
            "dossier_id": str(dossier_id),
        },
        ensure_ascii=False,
    )


async def _relay_hints(
    pubsub: aioredis.client.PubSub, database: psycopg.AsyncConnection[Any], send: Send
) -> None:
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        hint = msgpack.unpackb(message["data"])
        row = await (await database.execute(EVENT_SQL, (hint["event_id"],))).fetchone()
        if row is not None:
            await send({"type": "websocket.send", "text": event_frame(row)})


async def _refuse(scope: Scope, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4400})


def make_relay(database: str | dict[str, Any], redis_url: str) -> App:
    """The relay app on this database (a URL, or psycopg's connection keywords) and Redis."""
    params: dict[str, Any] = {"conninfo": database} if isinstance(database, str) else dict(database)

    async def relay(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        query = parse_qs(scope.get("query_string", b"").decode())
        if scope["type"] != "websocket" or not query.get("channel"):
            if scope["type"] == "websocket":
                await receive()  # the connect
            await _refuse(scope, send)
            return
        if (await receive())["type"] != "websocket.connect":
            return
        client = aioredis.Redis.from_url(redis_url, protocol=2)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        connection = await psycopg.AsyncConnection.connect(
            **{**params, "autocommit": True, "prepare_threshold": 0}
        )
        relaying: asyncio.Task[None] | None = None
        try:
            # Subscribed before the accept: a hint published once the client is
            # connected is never missed.
            await pubsub.subscribe(query["channel"][0])
            await send({"type": "websocket.accept"})
            relaying = asyncio.create_task(_relay_hints(pubsub, connection, send))
            while (await receive())["type"] != "websocket.disconnect":
                pass
        finally:
            if relaying is not None:
                relaying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relaying
            await pubsub.aclose()
            await client.aclose()
            await connection.close()

    return relay


_app: App | None = None


async def relay(scope: Scope, receive: Receive, send: Send) -> None:
    """The relay on the environment's DATABASE_URL and REDIS_URL (uvicorn's app)."""
    global _app
    if _app is None:
        _app = make_relay(os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
    await _app(scope, receive, send)
