"""Many idle sockets: server memory per open WebSocket, project ÷ bare ASGI app.

Both are served by one uvicorn process with the Procfile's flags; the server's
resident memory is read before and after opening the connections (kept idle).
The bare app (bench/echo_asgi.py `idle`) accepts and waits, nothing else.

TODO (lead, once the tracking WebSocket stream is merged): implement
`project_connect` below. The stream allows at most 5 sockets per user, so 5,000
sockets need 1,000 users: seed them in the bench database (bench/seed.py, e.g.
a `--users N` option creating users and sessions in bulk), then per connection
`POST /api/v1/realtime/ticket` with that user's token and open `/ws/v1/events`
with the ticket on ctx.api_server. Tickets are single-use and short-lived: take
each one just before its connection. Then drop the `NotAvailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection

from bench.harness import Context, NotAvailable, Result, Server, bench_env
from bench.sockets import bare_idle_connect, idle_socket_bytes

PATH = "many idle sockets"
RATIO = "bytes/connection project ÷ bare ASGI app"


def project_connect(ctx: Context) -> Callable[[int], Awaitable[ClientConnection]]:
    raise NotAvailable(
        "the project side (1,000 seeded users with one ticket and socket each) is not "
        "written yet; the bare-app baseline is measured"
    )


def run(ctx: Context) -> list[Result]:
    count = 1000 if ctx.quick else 5000
    with Server("bench.echo_asgi:idle", bench_env(), "ws-idle", ready_path=None) as bare:
        baseline = asyncio.run(
            idle_socket_bytes(bare.pid, count, bare_idle_connect(f"ws://127.0.0.1:{bare.port}/"))
        )
    figures = {"bare_asgi": baseline}
    try:
        connect_one = project_connect(ctx)
    except NotAvailable as exc:
        return [
            Result(
                path=PATH,
                ratio_name=RATIO,
                target="<= 2.5",
                figures=figures,
                not_available=str(exc),
                measured_by="server VmRSS delta, websockets client",
            )
        ]
    project = asyncio.run(idle_socket_bytes(ctx.api_server.pid, count, connect_one))
    figures["project"] = project
    return [
        Result(
            path=PATH,
            ratio_name=RATIO,
            target="<= 2.5",
            ratio=project["bytes_per_connection"] / baseline["bytes_per_connection"],
            figures=figures,
            measured_by="server VmRSS delta, websockets client",
        )
    ]
