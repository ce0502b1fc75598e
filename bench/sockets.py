"""Raw baselines for the WebSocket benchmarks, and the idle-socket memory probe.

- `redis_publish_rtt`: PUBLISH on one connection → message on a subscribed one;
- `websocket_echo_rtt`: one text frame to a bare ASGI echo app and back;
- `idle_socket_bytes`: resident memory a server process gains per open, idle
  WebSocket connection (connections opened by `connect_one(i)`, all kept open
  and read, so the client answers the server's pings and takes its heartbeats).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from bench.harness import rss_bytes


async def redis_publish_rtt(redis_url: str, samples: int, pace: float = 0.0) -> list[float]:
    """Round trips, back to back, or `pace` seconds apart (each process idle between)."""
    channel = f"bench:{uuid.uuid4().hex}"
    subscriber = aioredis.Redis.from_url(redis_url)
    publisher = aioredis.Redis.from_url(redis_url)
    pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    await publisher.ping()
    rtts: list[float] = []
    try:
        for index in range(samples):
            if pace:
                await asyncio.sleep(pace)
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


async def websocket_echo_rtt(url: str, samples: int, pace: float = 0.0) -> list[float]:
    """Round trips, back to back, or `pace` seconds apart (each process idle between)."""
    rtts: list[float] = []
    async with connect(url, max_size=2**16) as socket:
        for _ in range(10):  # warm-up
            await socket.send("warm-up")
            await socket.recv()
        for index in range(samples):
            if pace:
                await asyncio.sleep(pace)
            frame = f'{{"id": {index}, "type": "dossier.accepted", "status": 2}}'
            started = time.perf_counter()
            await socket.send(frame)
            answer = await socket.recv()
            rtts.append(time.perf_counter() - started)
            if answer != frame:
                raise RuntimeError("the echo server answered something else")
    return rtts


def open_files_limit(pid: int) -> int:
    """The soft limit of open files of a running process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return 2**31 if soft == "unlimited" else int(soft)
    raise RuntimeError(f"no open files limit for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drain(socket: ClientConnection) -> int:
    """Read (and drop) what the server sends, as an app would: an unread socket
    stops reading once its queue is full, and then misses the server's pings.
    Returns how many frames arrived."""
    frames = 0
    with contextlib.suppress(ConnectionClosed):
        async for _frame in socket:
            frames += 1
    return frames


async def _open(
    indices: range,
    connect_one: Callable[[int], Awaitable[ClientConnection]],
    batch: int,
    sockets: list[ClientConnection],
    readers: list[asyncio.Task[int]],
) -> None:
    """Open a socket per index, `batch` at a time, each read by a task from its start."""
    for start in range(0, len(indices), batch):
        opened = await asyncio.gather(*(connect_one(index) for index in indices[start:][:batch]))
        sockets.extend(opened)
        readers.extend(asyncio.create_task(_drain(socket)) for socket in opened)


async def _close(sockets: list[ClientConnection], readers: list[asyncio.Task[int]]) -> int:
    """Close every socket; the number of frames they received."""
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    counts = await asyncio.gather(*readers, return_exceptions=True)
    return sum(count for count in counts if isinstance(count, int))


async def idle_socket_bytes(
    pid: int,
    count: int,
    connect_one: Callable[[int], Awaitable[ClientConnection]],
    *,
    batch: int = 250,
    warmup: int = 50,
    settle_seconds: float = 3.0,
    hold_seconds: float = 30.0,
) -> dict[str, Any]:
    """Open `count` sockets (in batches), keep them idle, measure the server's RSS growth.

    `warmup` sockets (indices `count` and up) are opened and closed first, so code
    paths run once (imports, caches, pools) are not counted per socket. The
    sockets are then held open `hold_seconds` (longer than the server's heartbeat
    interval) while a task per socket reads what arrives; RSS is read at the end.
    """
    limit = open_files_limit(pid)
    if limit < count + 100:
        raise RuntimeError(
            f"the server may open {limit} files, {count} sockets need more: raise `ulimit -n`"
        )
    sockets: list[ClientConnection] = []
    readers: list[asyncio.Task[int]] = []
    try:
        await _open(range(count, count + warmup), connect_one, batch, sockets, readers)
    finally:
        await _close(sockets, readers)
    await asyncio.sleep(settle_seconds)
    before = rss_bytes(pid)
    started = time.monotonic()
    sockets, readers = [], []
    try:
        await _open(range(count), connect_one, batch, sockets, readers)
        opened = time.monotonic() - started
        cpu_before = cpu_seconds(pid)
        await asyncio.sleep(hold_seconds)
        after = rss_bytes(pid)
        cpu_held = cpu_seconds(pid) - cpu_before
        open_sockets = sum(1 for socket in sockets if socket.state is State.OPEN)
        closed_codes = collections.Counter(
            str(socket.close_code) for socket in sockets if socket.state is not State.OPEN
        )
    finally:
        frames = await _close(sockets, readers)
    return {
        "connections": count,
        "open_at_measure": open_sockets,
        "closed_during_hold": dict(closed_codes),
        "seconds_to_open": round(opened, 1),
        "held_seconds": hold_seconds,
        "frames_received": frames,
        # The server's CPU use while the sockets were idle (1.0 = one core busy).
        "server_cpu_while_held": round(cpu_held / hold_seconds, 3),
        "server_rss_before_bytes": before,
        "server_rss_after_bytes": after,
        "bytes_per_connection": round((after - before) / count),
    }


def bare_idle_connect(url: str) -> Callable[[int], Awaitable[ClientConnection]]:
    async def connect_one(index: int) -> ClientConnection:
        return await connect(url, open_timeout=30, ping_interval=None)

    return connect_one
