"""Live update: status change committed → frame received by a WebSocket client.

Ratio: p50 of the project's commit→frame latency ÷ (p50 raw Redis PUBLISH→message
round trip + p50 raw WebSocket echo round trip), all measured in the same run.
The two baselines are measured here against the bench Redis and a bare ASGI echo
app served by the same uvicorn with the Procfile's flags.

The project side (`project_latencies`): the seeded citizen gets a ticket
(`POST /api/v1/realtime/ticket`) and opens `/ws/v1/events` on the API server;
per sample this process commits an agency status change of the seeded dossier
with the lifecycle action itself (dossiers.lifecycle, against the bench
database: accept, then request_payment / start_processing in turn), takes t0
right after the commit returns, and the time the frame carrying that event id
arrives. The server relays it as it does in production (on_commit hint through
the Redis channel layer, then a read of the event log).

The stream only sends events below the cluster-wide transaction horizon
(tracking/stream.py): on a PostgreSQL cluster shared with other work (e.g. test
suites holding transactions open) frames wait for the socket's 1 s re-check, so
measure on a cluster of its own (BENCH_DATABASE_URL).
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
from websockets.sync.client import connect

from bench.echo_asgi import __name__ as echo_module
from bench.harness import Context, NotAvailable, Result, Server, bench_env, percentile
from bench.sockets import redis_publish_rtt, websocket_echo_rtt

PATH = "live update"
RATIO = "commit→frame p50 ÷ (Redis PUBLISH RTT + WS echo RTT)"


def _setup_django(ctx: Context) -> None:
    """Use the bench database and Redis from this process (the server's settings)."""
    import django
    from django.conf import settings

    if not settings.configured:
        os.environ.update(ctx.env)
        django.setup()


def project_latencies(ctx: Context, samples: int) -> list[float]:
    seeded = ctx.seeded
    server = ctx.api_server
    _setup_django(ctx)

    from dossiers import lifecycle
    from dossiers.models import Dossier
    from tracking.models import DossierEvent

    answer = httpx.post(
        f"{server.base_url}/api/v1/realtime/ticket",
        headers={"Authorization": f"Bearer {seeded.access_token}"},
        json={},
        timeout=10,
    )
    if answer.status_code != 201:
        raise NotAvailable(f"ticket refused: {answer.status_code} {answer.text[:200]}")
    ticket = answer.json()["ticket"]
    actor = lifecycle.Actor.agency_system("bench")
    dossier_id = seeded.dossier_id

    def commit() -> None:
        """One agency status change of the seeded dossier (committed on return)."""
        status = Dossier.objects.values_list("status", flat=True).get(pk=dossier_id)
        if status == Dossier.Status.NEW:
            lifecycle.accept(dossier_id, actor)
        elif status == Dossier.Status.PAYMENT_REQUESTED:
            lifecycle.start_processing(dossier_id, actor)
        else:
            lifecycle.request_payment(dossier_id, actor, amount=50_000)

    def latest_event_id() -> int | None:
        return (
            DossierEvent.objects.filter(dossier_id=dossier_id)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )

    latencies: list[float] = []
    url = f"ws://127.0.0.1:{server.port}/ws/v1/events?ticket={ticket}"
    with connect(url, open_timeout=10, ping_interval=None, max_size=2**20) as socket:
        for index in range(samples + 10):  # the first 10: warm-up
            commit()
            committed = time.perf_counter()
            # Only this process changes the dossier: the next event frame is this
            # commit's; its id is checked against the log once it has arrived.
            while True:
                frame = json.loads(socket.recv(timeout=10))
                if frame.get("type") == "event":
                    arrived = time.perf_counter()
                    break
            expected = latest_event_id()
            if frame.get("id") != expected or frame.get("dossier_id") != dossier_id:
                raise RuntimeError(f"frame for event {frame.get('id')}, committed {expected}")
            if index >= 10:
                latencies.append(arrived - committed)
    return latencies


def run(ctx: Context) -> list[Result]:
    samples = 100 if ctx.quick else 500
    redis_rtt = asyncio.run(redis_publish_rtt(ctx.env["REDIS_URL"], samples))
    with Server(f"{echo_module}:echo", bench_env(), "ws-echo", ready_path=None) as echo:
        echo_rtt = asyncio.run(websocket_echo_rtt(f"ws://127.0.0.1:{echo.port}/", samples))
    baseline_p50 = percentile(redis_rtt, 0.5) + percentile(echo_rtt, 0.5)
    figures = {
        "samples": samples,
        "redis_publish_rtt_p50_ms": round(percentile(redis_rtt, 0.5) * 1000, 3),
        "redis_publish_rtt_p99_ms": round(percentile(redis_rtt, 0.99) * 1000, 3),
        "ws_echo_rtt_p50_ms": round(percentile(echo_rtt, 0.5) * 1000, 3),
        "ws_echo_rtt_p99_ms": round(percentile(echo_rtt, 0.99) * 1000, 3),
        "baseline_p50_ms": round(baseline_p50 * 1000, 3),
    }
    try:
        latencies = project_latencies(ctx, samples)
    except NotAvailable as exc:
        return [
            Result(
                path=PATH,
                ratio_name=RATIO,
                target="<= 3.0",
                figures=figures,
                not_available=str(exc),
                measured_by="redis-py asyncio, websockets client",
            )
        ]
    figures["commit_to_frame_p50_ms"] = round(percentile(latencies, 0.5) * 1000, 3)
    figures["commit_to_frame_p99_ms"] = round(percentile(latencies, 0.99) * 1000, 3)
    return [
        Result(
            path=PATH,
            ratio_name=RATIO,
            target="<= 3.0",
            ratio=percentile(latencies, 0.5) / baseline_p50,
            figures=figures,
            measured_by="redis-py asyncio, websockets client",
        )
    ]
