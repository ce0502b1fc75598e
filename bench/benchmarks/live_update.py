"""Live update: status change committed → frame received by a WebSocket client.

Ratio: p50 of the project's commit→frame latency ÷ (p50 raw Redis PUBLISH→message
round trip + p50 raw WebSocket echo round trip), all measured in the same run.
The two baselines are measured here against the bench Redis and a bare ASGI echo
app served by the same uvicorn with the Procfile's flags.

TODO (lead, once the tracking WebSocket stream is merged): implement
`project_latencies` below with the real client path:
  1. sign in (ctx.seeded.access_token), `POST /api/v1/realtime/ticket`;
  2. open `/ws/v1/events` on ctx.api_server with the ticket (as the AsyncAPI
     document says) and wait until it is subscribed;
  3. per sample: note t0, commit a status change of the seeded dossier (the
     agency action, e.g. processing_started/supplement, through the signed agency
     API or the action function in a helper process), take t0 right after the
     commit returns (the agency API's response), and the time the matching frame
     (by event id) arrives on the socket; return the list of (frame - t0).
  Then drop the `NotAvailable` and the ratio is computed by `run` as it stands.
"""

from __future__ import annotations

import asyncio

from bench.echo_asgi import __name__ as echo_module
from bench.harness import Context, NotAvailable, Result, Server, bench_env, percentile
from bench.sockets import redis_publish_rtt, websocket_echo_rtt

PATH = "live update"
RATIO = "commit→frame p50 ÷ (Redis PUBLISH RTT + WS echo RTT)"


def project_latencies(ctx: Context, samples: int) -> list[float]:
    raise NotAvailable(
        "the tracking WebSocket stream (/ws/v1/events) is not merged in this branch yet; "
        "baselines measured, project side to add in bench/benchmarks/live_update.py"
    )


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
