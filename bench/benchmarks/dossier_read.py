"""Dossier status read: GET /api/v1/dossiers/{id} against a django-ninja hello world.

The dossier is a realistic one (bench/seed.py: a procedure with 5 required
documents, 6 photo attachments, filed for the citizen's organisation), so the
read does the work a real dossier's read does. Same server process and flags,
32 concurrent connections; ROUNDS rounds (each: hello then dossier, so both see
the same machine state), a ratio per round; the row is the median of the
rounds' ratios and the figures give their spread (min, max), since on a shared
machine one round's ratio moves more than the margin to the target.

The figures also give the server's CPU time per request of each load (from
/proc, all its threads): on a loaded machine the work per request moves much
less than the requests per second, so it tells a change of code from a change
of load.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bench.harness import Context, Result
from bench.loadgen import Load, run_load

PATH = "dossier status read"
CONNECTIONS = 32
ROUNDS = 5
PROFILE_SECONDS = 8


@dataclass
class Measured:
    load: Load
    cpu_seconds: float  # the server's, during the load

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / max(self.load.requests, 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (all its threads, ended ones too)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run: Callable[[], Load]) -> Measured:
    before = cpu_seconds(pid)
    load = run()
    return Measured(load, cpu_seconds(pid) - before)


def measure(ctx: Context) -> list[tuple[Measured, Measured]]:
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
        hello = measured(
            server.pid, lambda: run_load(hello_url, connections=CONNECTIONS, seconds=seconds)
        )
        dossier = measured(
            server.pid,
            lambda: run_load(dossier_url, headers=auth, connections=CONNECTIONS, seconds=seconds),
        )
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


def with_cpu(one: Measured) -> dict[str, float | int]:
    return {**one.load.figures(), "server_cpu_ms_per_request": round(one.cpu_ms_per_request, 2)}


def run(ctx: Context) -> list[Result]:
    measured_rounds = measure(ctx)
    rounds = [(hello.load, dossier.load) for hello, dossier in measured_rounds]
    throughput = [dossier.rps / hello.rps for hello, dossier in rounds]
    tail = [dossier.p99_ms / hello.p99_ms for hello, dossier in rounds]
    figures = {
        "connections": CONNECTIONS,
        "dossier": "5 required documents, 6 attachments, an organisation",
        "rps_ratio": spread(throughput),
        "p99_ratio": spread(tail),
        # hello's server CPU per request ÷ the dossier's: what the rps ratio would be
        # if the server's CPU were all that limits both (PostgreSQL's is not in it).
        "server_cpu_ratio": spread(
            [
                hello.cpu_ms_per_request / max(dossier.cpu_ms_per_request, 1e-9)
                for hello, dossier in measured_rounds
            ]
        ),
        "rounds": [
            {"hello": with_cpu(hello), "dossier": with_cpu(dossier)}
            for hello, dossier in measured_rounds
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
