"""Live update: status change committed → frame received by a WebSocket client.

Ratio: p50 of the project's commit→frame latency ÷ (p50 raw Redis PUBLISH→message
round trip + p50 raw WebSocket echo round trip), all measured in the same run.
The two baselines are measured here against the bench Redis and a bare ASGI echo
app served by the same uvicorn with the Procfile's flags.

The project side (`project_latencies`): the seeded citizen gets a ticket
(`POST /api/v1/realtime/ticket`) and opens `/ws/v1/events` on the API server;
per sample this process commits an agency status change of the seeded dossier
with the lifecycle action itself (dossiers.lifecycle: accept, then
request_payment / start_processing in turn). t0 is the moment PostgreSQL's
COMMIT returned (the first on-commit callback, before the action's own ones
publish the hint), t1 the moment the frame carrying that event id arrives. The
server relays it as it does in production (on-commit hint through the Redis
channel layer, then one read of the event log).

The stream only sends events below the cluster-wide transaction horizon
(tracking/stream.py): on a PostgreSQL cluster shared with other work (e.g. test
suites holding transactions open) frames wait for the socket's 1 s re-check.
So this row runs on a throwaway cluster of its own (bench/cluster.py: initdb +
pg_ctl, its own API server) when `initdb` is there; BENCH_LIVE_CLUSTER=shared
measures on the bench database instead (the figures say which).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
from websockets.sync.client import connect

from bench.cluster import Cluster
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

    from django.db import connections, transaction

    from dossiers import lifecycle
    from dossiers.models import Dossier, DossierEvent

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

    def commit() -> float:
        """One agency status change of the seeded dossier; returns when COMMIT returned."""
        committed: list[float] = []
        with transaction.atomic():
            # Registered before the action's own callbacks (the hint): runs first.
            transaction.on_commit(lambda: committed.append(time.perf_counter()))
            status = Dossier.objects.values_list("status", flat=True).get(pk=dossier_id)
            if status == Dossier.Status.NEW:
                lifecycle.accept(dossier_id, actor)
            elif status == Dossier.Status.PAYMENT_REQUESTED:
                lifecycle.start_processing(dossier_id, actor)
            else:
                lifecycle.request_payment(dossier_id, actor, amount=50_000)
        return committed[0]

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
            committed = commit()
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
    connections.close_all()
    return latencies


@contextlib.contextmanager
def live_context(ctx: Context) -> Iterator[tuple[Context, str]]:
    """The context to measure in (a cluster of its own when possible) and what it is."""
    if os.environ.get("BENCH_LIVE_CLUSTER") == "shared":
        yield ctx, "shared cluster (BENCH_LIVE_CLUSTER=shared)"
        return
    try:
        cluster = Cluster().start()
    except NotAvailable as exc:
        yield ctx, f"shared cluster (no cluster of its own: {exc})"
        return
    live = Context(quick=ctx.quick, name="api-live", DATABASE_URL=cluster.url("citizen_bench_live"))
    try:
        live.api_server  # noqa: B018 - migrates, seeds and starts the server
        ctx.commands.extend(live.commands)
        yield live, f"cluster of its own ({cluster.version()})"
    finally:
        live.close()
        cluster.stop()


def run(ctx: Context) -> list[Result]:
    samples = 100 if ctx.quick else 500
    redis_rtt = asyncio.run(redis_publish_rtt(ctx.env["REDIS_URL"], samples))
    with Server(f"{echo_module}:echo", bench_env(), "ws-echo", ready_path=None) as echo:
        echo_rtt = asyncio.run(websocket_echo_rtt(f"ws://127.0.0.1:{echo.port}/", samples))
    baseline_p50 = percentile(redis_rtt, 0.5) + percentile(echo_rtt, 0.5)
    figures: dict[str, Any] = {
        "samples": samples,
        "redis_publish_rtt_p50_ms": round(percentile(redis_rtt, 0.5) * 1000, 3),
        "redis_publish_rtt_p99_ms": round(percentile(redis_rtt, 0.99) * 1000, 3),
        "ws_echo_rtt_p50_ms": round(percentile(echo_rtt, 0.5) * 1000, 3),
        "ws_echo_rtt_p99_ms": round(percentile(echo_rtt, 0.99) * 1000, 3),
        "baseline_p50_ms": round(baseline_p50 * 1000, 3),
    }
    try:
        with live_context(ctx) as (live, database):
            figures["database"] = database
            latencies = project_latencies(live, samples)
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
