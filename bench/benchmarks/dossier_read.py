"""Dossier status read: GET /api/v1/dossiers/{id} against a django-ninja hello world.

Same server process and flags, 32 concurrent connections, alternating rounds so
both see the same machine state. Ratio of throughputs, and of p99 latencies.
"""

from __future__ import annotations

import statistics

import httpx

from bench.harness import Context, Result
from bench.loadgen import Load, run_load

PATH = "dossier status read"
CONNECTIONS = 32
PROFILE_SECONDS = 8


def _combine(loads: list[Load]) -> Load:
    return Load(
        tool=loads[0].tool,
        requests=sum(load.requests for load in loads),
        seconds=sum(load.seconds for load in loads),
        p50_ms=statistics.median(load.p50_ms for load in loads),
        p99_ms=statistics.median(load.p99_ms for load in loads),
        errors=sum(load.errors for load in loads),
    )


def measure(ctx: Context) -> tuple[Load, Load]:
    server = ctx.api_server
    hello_url = f"{server.base_url}/bench/hello"
    dossier_url = f"{server.base_url}/api/v1/dossiers/{ctx.seeded.dossier_id}"
    auth = {"Authorization": f"Bearer {ctx.seeded.access_token}"}
    check = httpx.get(dossier_url, headers=auth)
    if check.status_code != 200:
        raise RuntimeError(f"GET dossier answered {check.status_code}: {check.text[:200]}")
    if httpx.get(hello_url).status_code != 200:
        raise RuntimeError("the hello endpoint does not answer 200")

    seconds = 3.0 if ctx.quick else 10.0
    rounds = 1 if ctx.quick else 3
    run_load(hello_url, connections=CONNECTIONS, seconds=2)  # warm-up, not counted
    run_load(dossier_url, headers=auth, connections=CONNECTIONS, seconds=2)
    hello: list[Load] = []
    dossier: list[Load] = []
    for _ in range(rounds):
        hello.append(run_load(hello_url, connections=CONNECTIONS, seconds=seconds))
        dossier.append(
            run_load(dossier_url, headers=auth, connections=CONNECTIONS, seconds=seconds)
        )
    return _combine(hello), _combine(dossier)


def workload(ctx: Context) -> None:
    """The measured load again, for the profiler."""
    server = ctx.api_server
    run_load(
        f"{server.base_url}/api/v1/dossiers/{ctx.seeded.dossier_id}",
        headers={"Authorization": f"Bearer {ctx.seeded.access_token}"},
        connections=CONNECTIONS,
        seconds=PROFILE_SECONDS - 1,
    )


def run(ctx: Context) -> list[Result]:
    hello, dossier = measure(ctx)
    figures = {"connections": CONNECTIONS, "hello": hello.figures(), "dossier": dossier.figures()}
    notes = []
    if hello.errors or dossier.errors:
        notes.append(f"errors: hello {hello.errors}, dossier {dossier.errors}")
    return [
        Result(
            path=PATH,
            ratio_name="req/s GET dossier ÷ req/s hello",
            target=">= 0.45",
            ratio=dossier.rps / hello.rps,
            figures=figures,
            measured_by=dossier.tool,
            notes=notes,
        ),
        Result(
            path=PATH,
            ratio_name="p99 GET dossier ÷ p99 hello",
            target="<= 3.0",
            ratio=dossier.p99_ms / hello.p99_ms,
            figures=figures,
            measured_by=dossier.tool,
            notes=notes,
        ),
    ]
