"""Raw baselines for the WebSocket benchmarks, and the idle-socket memory probe.

- `redis_publish_rtt`: PUBLISH on one connection → message on a subscribed one;
- `websocket_echo_rtt`: one text frame to a bare ASGI echo app and back;
- `idle_socket_bytes`: resident memory a server process gains per open, idle
  WebSocket connection (connections opened by `connect(i)`, all kept open).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from bench.harness import rss_bytes


async def redis_publish_rtt(redis_url: str, samples: int) -> list[float]:
    channel = f"bench:{uuid.uuid4().hex}"
    subscriber = aioredis.Redis.from_url(redis_url)
    publisher = aioredis.Redis.from_url(redis_url)
    pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    await publisher.ping()
    rtts: list[float] = []
    try:
        for index in range(samples):
            started = time.perf_counter()
            await publisher.publish(channel, str(index))
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is not None and message["type"] == "message":
                    break
            if message["data"] != str(index).encode():
                raise RuntimeError("Redis delivered an unexpected message")
            rtts.append(time.perf_counter() - started)
    finally:
        await pubsub.unsubscribe(channel)
        await pubsub.aclose()
        await subscriber.aclose()
        await publisher.aclose()
    return rtts


async def websocket_echo_rtt(url: str, samples: int) -> list[float]:
    rtts: list[float] = []
    async with connect(url, max_size=2**16) as socket:
        for _ in range(10):  # warm-up
            await socket.send("warm-up")
            await socket.recv()
        for index in range(samples):
            frame = f'{{"id": {index}, "type": "dossier.accepted", "status": 2}}'
            started = time.perf_counter()
            await socket.send(frame)
            answer = await socket.recv()
            rtts.append(time.perf_counter() - started)
            if answer != frame:
                raise RuntimeError("the echo server answered something else")
    return rtts


async def idle_socket_bytes(
    pid: int,
    count: int,
    connect_one: Callable[[int], Awaitable[ClientConnection]],
    *,
    batch: int = 250,
    settle_seconds: float = 3.0,
) -> dict[str, Any]:
    """Open `count` sockets (in batches), keep them idle, measure the server's RSS growth."""
    await asyncio.sleep(settle_seconds)
    before = rss_bytes(pid)
    sockets: list[ClientConnection] = []
    try:
        for start in range(0, count, batch):
            sockets.extend(
                await asyncio.gather(
                    *(connect_one(index) for index in range(start, min(count, start + batch)))
                )
            )
        await asyncio.sleep(settle_seconds)
        after = rss_bytes(pid)
        open_sockets = sum(1 for socket in sockets if socket.state.name == "OPEN")
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    return {
        "connections": count,
        "open_at_measure": open_sockets,
        "server_rss_before_bytes": before,
        "server_rss_after_bytes": after,
        "bytes_per_connection": round((after - before) / count),
    }


def bare_idle_connect(url: str) -> Callable[[int], Awaitable[ClientConnection]]:
    async def connect_one(index: int) -> ClientConnection:
        return await connect(url, open_timeout=30, ping_interval=None)

    return connect_one
