"""Dossier status read: GET /api/v1/dossiers/{id} against a django-ninja hello world.

The dossier is a realistic one (bench/seed.py: a procedure with 5 required
documents, 6 photo attachments, filed for the citizen's organisation), so the
read does the work a real dossier's read does. Same server process and flags,
32 concurrent connections; ROUNDS rounds (each: hello then dossier, so both see
the same machine state), a ratio per round; the row is the median of the
rounds' ratios and the figures give their spread (min, max), since on a shared
machine one round's ratio moves more than the margin to the target.
"""

from __future__ import annotations

import statistics

import httpx

from bench.harness import Context, Result
from bench.loadgen import Load, run_load

PATH = "dossier status read"
CONNECTIONS = 32
ROUNDS = 5
PROFILE_SECONDS = 8


def measure(ctx: Context) -> list[tuple[Load, Load]]:
    """(hello, dossier) of each round."""
    server = ctx.api_server
    hello_url = f"{server.base_url}/bench/hello"
    dossier_url = f"{server.base_url}/api/v1/dossiers/{ctx.seeded.dossier_id}"
    auth = {"Authorization": f"Bearer {ctx.seeded.access_token}"}
    check = httpx.get(dossier_url, headers=auth)
    if check.status_code != 200:
        raise RuntimeError(f"GET dossier answered {check.status_code}: {check.text[:200]}")
    if httpx.get(hello_url).status_code != 200:
        raise RuntimeError("the hello endpoint does not answer 200")

    seconds = 3.0 if ctx.quick else 8.0
    run_load(hello_url, connections=CONNECTIONS, seconds=2)  # warm-up, not counted
    run_load(dossier_url, headers=auth, connections=CONNECTIONS, seconds=2)
    rounds = []
    for _ in range(ROUNDS):
        hello = run_load(hello_url, connections=CONNECTIONS, seconds=seconds)
        dossier = run_load(dossier_url, headers=auth, connections=CONNECTIONS, seconds=seconds)
        rounds.append((hello, dossier))
    return rounds


def workload(ctx: Context) -> None:
    """The measured load again, for the profiler."""
    server = ctx.api_server
    run_load(
        f"{server.base_url}/api/v1/dossiers/{ctx.seeded.dossier_id}",
        headers={"Authorization": f"Bearer {ctx.seeded.access_token}"},
        connections=CONNECTIONS,
        seconds=PROFILE_SECONDS - 1,
    )


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "rounds": len(values),
    }


def run(ctx: Context) -> list[Result]:
    rounds = measure(ctx)
    throughput = [dossier.rps / hello.rps for hello, dossier in rounds]
    tail = [dossier.p99_ms / hello.p99_ms for hello, dossier in rounds]
    figures = {
        "connections": CONNECTIONS,
        "dossier": "5 required documents, 6 attachments, an organisation",
        "rps_ratio": spread(throughput),
        "p99_ratio": spread(tail),
        "rounds": [
            {"hello": hello.figures(), "dossier": dossier.figures()} for hello, dossier in rounds
        ],
    }
    errors = sum(hello.errors + dossier.errors for hello, dossier in rounds)
    notes = [f"errors: {errors}"] if errors else []
    measured_by = f"{rounds[0][1].tool}, median of {len(rounds)} rounds"
    return [
        Result(
            path=PATH,
            ratio_name="req/s GET dossier ÷ req/s hello (median of rounds)",
            target=">= 0.50",
            ratio=statistics.median(throughput),
            figures=figures,
            measured_by=measured_by,
            notes=notes,
        ),
        Result(
            path=PATH,
            ratio_name="p99 GET dossier ÷ p99 hello (median of rounds)",
            target="<= 3.0",
            ratio=statistics.median(tail),
            figures=figures,
            measured_by=measured_by,
            notes=notes,
        ),
    ]
