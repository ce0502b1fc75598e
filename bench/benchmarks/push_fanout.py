"""Push fan-out: deliveries/s of the push worker to the fake FCM server ÷ the fake
server's own ceiling at the same concurrency.

1. The fake FCM v1 server (`python -m fakes.fcm`) runs as a process
   of its own on a free loopback port.
2. `bench.seed push` gives an organisation members owning N devices (bulk
   inserts), then the agency accepts the organisation's dossier with the real
   action: the event's fan-out job is deferred in its transaction.
3. The worker (the Procfile's `worker` command, bench environment, firebase-admin
   pointed at the fake by `fakes.fcm.backend_env`) fans the event
   out and sends; deliveries/s = accepted sends ÷ the time from the first to the
   last send the fake server received (its own clock).
4. Ceiling: right after, a plain load generator (wrk; httpx without it) posts one
   of the messages the worker sent, with a valid OAuth2 token from the fake, with
   as many connections as the worker can have sends in flight (FCM_CONCURRENCY
   per send job × the send jobs that run at once).
Ratio = deliveries/s ÷ ceiling requests/s; target ≥ 0.5.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Context, Result
from bench.push import (
    FakeFcm,
    ceiling,
    delivered_pairs,
    push_settings,
    run_worker,
    send_concurrency,
    worker_concurrency,
)

PATH = "push fan-out"
RATIO = "worker deliveries/s ÷ fake FCM ceiling"
TARGET = ">= 0.5"


def measure(ctx: Context, devices: int, label: str, ceiling_seconds: float) -> dict[str, Any]:
    settings = push_settings(ctx)
    fake = FakeFcm(f"fake-fcm-{label}")
    try:
        fake.start(ctx.env)
        run = run_worker(ctx, fake, devices, label)
        workers = worker_concurrency(run.worker_argv, settings)
        concurrency = send_concurrency(settings, workers, devices)
        message = next(a["message"] for a in run.attempts if a["outcome"] == "ok")
        fake.reset()
        load = ceiling(fake, message, concurrency, ceiling_seconds)
    finally:
        fake.stop()
    pairs = delivered_pairs(run.attempts)
    expected = run.audience.devices
    if len(set(pairs)) != expected or run.states.get("delivered") != expected:
        raise RuntimeError(f"{len(set(pairs))} pushes for {expected} devices: {run.states}")
    sent = run.sent_at
    span = max(sent) - min(sent)
    rate = len(pairs) / span
    return {
        "devices": expected,
        "recipients": run.audience.users,
        "worker_concurrency": workers,
        "fcm_concurrency": settings["FCM_CONCURRENCY"],
        "fcm_batch_size": settings["FCM_BATCH_SIZE"],
        "sends_in_flight_max": concurrency,
        "deliveries": len(pairs),
        "first_to_last_send_s": round(span, 3),
        "deliveries_per_s": round(rate, 1),
        "worker_start_to_first_send_s": round(min(sent) - run.started_at, 3),
        "worker_start_to_drained_s": round(run.drain_seconds, 3),
        "oauth_token_requests": run.stats["token_requests"],
        "ceiling": {"connections": concurrency, **load.figures(), "tool": load.tool},
        "ratio": rate / load.rps,
    }


def run(ctx: Context) -> list[Result]:
    devices = 1000 if ctx.quick else 4000
    figures = measure(ctx, devices, "fanout", ceiling_seconds=3 if ctx.quick else 10)
    ratio = figures.pop("ratio")
    notes = []
    if figures["ceiling"]["tool"] != "wrk":
        notes.append(
            "ceiling measured with the Python generator, not wrk: it measures the "
            "generator more than the fake server (install wrk)"
        )
    return [
        Result(
            path=PATH,
            ratio_name=RATIO,
            target=TARGET,
            ratio=ratio,
            figures=figures,
            measured_by=f"fake FCM server's request log; ceiling: {figures['ceiling']['tool']}",
            notes=notes,
        )
    ]
