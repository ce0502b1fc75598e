"""Many idle sockets: server memory per open WebSocket, project ÷ bare ASGI app.

Both are served by one uvicorn process with the Procfile's flags; the server's
resident memory is read before and after opening the connections, with the
same client, the same count and the same timing on both sides
(bench/sockets.py `idle_socket_bytes`): a warm-up of 50 sockets opened and
closed, then the sockets opened 250 at a time and held open, each read by a
task (the client answers uvicorn's pings and takes the heartbeats), for longer
than the stream's heartbeat interval, so every project socket has gone
through a heartbeat (session re-check, heartbeat frame, look at the log)
before the second reading.

The bare app (bench/echo_asgi.py `idle`) accepts and waits, nothing else.
The project side is the real stream, `/ws/v1/events` on ctx.api_server. The
stream allows WS_MAX_SOCKETS_PER_USER sockets per user (5), so the citizens
are seeded in bulk (bench/seed.py `--users`, one session each), and each socket
takes its single-use ticket (`POST /api/v1/realtime/ticket`) just before it
connects, without an Origin header, as the mobile app does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.harness import Context, Result, Server, bench_env, seed_users
from bench.sockets import bare_idle_connect, idle_socket_bytes

PATH = "many idle sockets"
# What `bench.run --profile` records for this row when it misses.
PROFILE_NOTE = (
    "a memory row (the server's VmRSS per socket); py-spy samples CPU: start the "
    "server with PYTHONTRACEMALLOC=1 and compare tracemalloc snapshots before and "
    "after the sockets open instead"
)
RATIO = "bytes/connection project ÷ bare ASGI app"
WARMUP = 50


def project_connect(
    server: Server, tokens: list[str], per_user: int, client: httpx.AsyncClient
) -> Callable[[int], Awaitable[ClientConnection]]:
    """Socket `index` belongs to citizen `index // per_user`; a fresh ticket each."""

    async def connect_one(index: int) -> ClientConnection:
        token = tokens[index // per_user]
        answer = await client.post(
            f"{server.base_url}/api/v1/realtime/ticket",
            headers={"Authorization": f"Bearer {token}"},
            json={},
        )
        if answer.status_code != 201:
            raise RuntimeError(f"ticket refused: {answer.status_code} {answer.text[:200]}")
        url = answer.json()["url"]  # absolute (ws://host:port/ws/v1/events?ticket=…)
        return await connect(url, open_timeout=60, ping_interval=None)

    return connect_one


async def project_idle_bytes(
    server: Server, tokens: list[str], per_user: int, count: int, hold: float
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        connect_one = project_connect(server, tokens, per_user, client)
        return await idle_socket_bytes(
            server.pid, count, connect_one, warmup=WARMUP, hold_seconds=hold
        )


def _check(figures: dict[str, Any]) -> None:
    if figures["open_at_measure"] != figures["connections"]:
        raise RuntimeError(
            f"{figures['connections'] - figures['open_at_measure']} sockets closed before "
            f"the measurement (close codes {figures['closed_during_hold']})"
        )


def run(ctx: Context) -> list[Result]:
    count = 1000 if ctx.quick else 5000
    heartbeat = float(ctx.env.get("WS_HEARTBEAT_SECONDS", "25"))
    hold = min(heartbeat, 30.0) + 5.0
    with Server("bench.echo_asgi:idle", bench_env(), "ws-idle", ready_path=None) as bare:
        baseline = asyncio.run(
            idle_socket_bytes(
                bare.pid,
                count,
                bare_idle_connect(f"ws://127.0.0.1:{bare.port}/"),
                warmup=WARMUP,
                hold_seconds=hold,
            )
        )
    _check(baseline)

    server = ctx.api_server
    per_user = int(ctx.env.get("WS_MAX_SOCKETS_PER_USER", "5"))
    tokens = seed_users(ctx.env, math.ceil((count + WARMUP) / per_user))
    project = asyncio.run(project_idle_bytes(server, tokens, per_user, count, hold))
    _check(project)
    return [
        Result(
            path=PATH,
            ratio_name=RATIO,
            target="<= 2.5",
            ratio=project["bytes_per_connection"] / baseline["bytes_per_connection"],
            figures={"bare_asgi": baseline, "project": project, "sockets_per_user": per_user},
            measured_by="server VmRSS delta, websockets client",
        )
    ]
