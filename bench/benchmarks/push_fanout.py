"""Push fan-out: deliveries/s of the push worker to the fake FCM server, from the
event's commit to the last push accepted ÷ the fake server's own ceiling at the
number of connections the worker really opened.

1. The fake FCM v1 server (`python -m fakes.fcm`) runs as a process of its own on
   a free loopback port.
2. `bench.seed push --no-accept` gives an organisation members owning N devices
   (bulk inserts) and its submitted dossier.
3. The worker (the Procfile's `worker` command, bench environment, firebase-admin
   pointed at the fake by `fakes.fcm.backend_env`) is started and waited for
   until it listens for jobs, as a worker in production already is (it builds its
   FCM client first: settings.WORKER_WARM_UP).
4. The agency accepts the dossier with the real action (`bench.seed accept`): the
   event's fan-out job is deferred in its transaction; the clock starts when its
   COMMIT returned and stops at the last push the fake server accepted (both
   epoch clocks of this machine). Meanwhile the established connections to the
   fake (every 250 ms) and the worker's threads (every 10 ms) are sampled from
   /proc, and the CPU time of the worker, the fake, the bench database's
   PostgreSQL backends and the whole machine (every 100 ms, `CpuMeter`).
5. Ceiling: right after, a plain load generator (wrk; httpx without it) posts one
   of the messages the worker sent, with a valid OAuth2 token from the fake, with
   as many connections as the worker had at its peak; the CPU time of the fake and
   of wrk is read around it.
Ratio = deliveries/s ÷ ceiling requests/s; target ≥ 0.5. `figures.cpu` says what
bounds it: CPU per delivery of the path (worker + fake + PostgreSQL) against CPU
per request of the ceiling (fake + wrk), and the share of the machine each got.
A miss is profiled: a second fan-out to a fresh audience with py-spy sampling the
worker.
"""

from __future__ import annotations

import os
from typing import Any

from bench.harness import Context, Result
from bench.push import (
    FakeFcm,
    ceiling_with_cpu,
    delivered_pairs,
    push_settings,
    run_worker,
    send_concurrency,
    worker_concurrency,
)

PATH = "push fan-out"
RATIO = "commit→last push deliveries/s ÷ fake FCM ceiling at the worker's connections"
TARGET = ">= 0.5"
PROFILE_SECONDS = 10


def measure(ctx: Context, devices: int, label: str, ceiling_seconds: float) -> dict[str, Any]:
    settings = push_settings(ctx)
    fake = FakeFcm(f"fake-fcm-{label}")
    found: dict[str, Any] = {}
    try:
        fake.start(ctx.env)
        run = run_worker(ctx, fake, devices, label)
        connections = max(1, run.peak_connections)
        message = next(a["message"] for a in run.attempts if a["outcome"] == "ok")
        fake.reset()
        load, ceiling_cpu = ceiling_with_cpu(fake, message, connections, ceiling_seconds)
        pairs = delivered_pairs(run.attempts)
        span = max(run.sent_at) - run.committed_at
        ratio = len(pairs) / span / load.rps
        if ctx.profiling and ratio < 0.5:
            fake.reset()
            again = run_worker(
                ctx, fake, devices, f"{label}-profile", profile_seconds=PROFILE_SECONDS
            )
            found = again.profile
    finally:
        fake.stop()
    expected = run.audience.devices
    if len(set(pairs)) != expected or run.states.get("delivered") != expected:
        raise RuntimeError(f"{len(set(pairs))} pushes for {expected} devices: {run.states}")
    workers = worker_concurrency(run.worker_argv, settings)
    return {
        "devices": expected,
        "recipients": run.audience.users,
        "worker_concurrency": workers,
        "fcm_concurrency": settings["FCM_CONCURRENCY"],
        "fcm_batch_size": settings["FCM_BATCH_SIZE"],
        "connections_to_fcm_peak": run.peak_connections,
        "worker_threads_peak": run.worker_threads_peak,
        "sends_in_flight_settings_allow": send_concurrency(settings, workers, devices),
        "fake_peak_concurrency": run.stats.get("peak_concurrency"),
        "deliveries": len(pairs),
        "commit_to_first_send_s": round(min(run.sent_at) - run.committed_at, 3),
        "first_to_last_send_s": round(max(run.sent_at) - min(run.sent_at), 3),
        "commit_to_last_send_s": round(span, 3),
        "deliveries_per_s": round(len(pairs) / span, 1),
        "deliveries_per_s_first_to_last_send": round(
            len(pairs) / max(1e-9, max(run.sent_at) - min(run.sent_at)), 1
        ),
        "commit_to_drained_s": round(run.drain_seconds, 3),
        "oauth_token_requests": run.stats["token_requests"],
        "ceiling": {"connections": connections, **load.figures(), "tool": load.tool},
        "cpu": cpu_figures(run.cpu, ceiling_cpu, len(pairs), load.requests, load.rps),
        "ratio": ratio,
        "profile": found,
    }


def cpu_figures(
    path: dict[str, float],
    at_ceiling: dict[str, float],
    deliveries: int,
    requests: int,
    ceiling_rps: float,
) -> dict[str, Any]:
    """Where the CPU went, per delivery (commit → every delivery final) and per request
    of the ceiling run; and what that allows.

    - `ratio_at_equal_cpu`: (fake + wrk CPU per request) ÷ (worker + fake + PostgreSQL
      CPU per delivery), the ratio had the path got as much CPU as the ceiling run
      did (the rates cancel out: it is a ratio of CPU costs). What the machine's
      load does to the row (the path gets a share of 2 busy cores) is not in it.
    - `ratio_bound_worker_one_core`: the worker is one process (one interpreter lock):
      a whole core for it, no wait, gives at most 1 ÷ its CPU per delivery.
    - `ratio_bound_whole_machine`: every core of the machine for the path."""
    cores = os.cpu_count() or 1
    per_delivery = {
        name: round(1000 * path.get(name, 0.0) / max(1, deliveries), 3)
        for name in ("worker", "fake", "postgres")
    }
    path_ms = sum(per_delivery.values())
    per_request = {
        name: round(1000 * at_ceiling.get(name, 0.0) / max(1, requests), 3)
        for name in ("fake", "load_generator")
    }
    ceiling_ms = sum(per_request.values())
    window, ceiling_window = path.get("window") or 1e-9, at_ceiling.get("window") or 1e-9
    path_cpu = sum(path.get(n, 0.0) for n in ("worker", "fake", "postgres"))
    ceiling_cpu = at_ceiling.get("fake", 0.0) + at_ceiling.get("load_generator", 0.0)
    return {
        "cores": cores,
        "path_ms_per_delivery": {**per_delivery, "total": round(path_ms, 3)},
        "path_cores_used": round(path_cpu / window, 2),
        "machine_cores_busy_during_path": round(path.get("machine_busy", 0.0) / window, 2),
        "ceiling_ms_per_request": {**per_request, "total": round(ceiling_ms, 3)},
        "ceiling_cores_used": round(ceiling_cpu / ceiling_window, 2),
        "machine_cores_busy_during_ceiling": round(
            at_ceiling.get("machine_busy", 0.0) / ceiling_window, 2
        ),
        "ratio_at_equal_cpu": round(ceiling_ms / path_ms, 3) if path_ms else None,
        "ratio_bound_worker_one_core": (
            round(1000 / per_delivery["worker"] / ceiling_rps, 3)
            if per_delivery["worker"] and ceiling_rps
            else None
        ),
        "ratio_bound_whole_machine": (
            round(cores * 1000 / path_ms / ceiling_rps, 3) if path_ms and ceiling_rps else None
        ),
    }


def run(ctx: Context) -> list[Result]:
    devices = 1000 if ctx.quick else 4000
    figures = measure(ctx, devices, "fanout", ceiling_seconds=3 if ctx.quick else 10)
    ratio = figures.pop("ratio")
    found = figures.pop("profile")
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
            profile=found,
        )
    ]
