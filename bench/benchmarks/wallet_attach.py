"""Wallet attach: a draft's document taken from the wallet (no byte copy), against hello.

`POST /api/v1/dossiers/{id}/wallet-attachments`: access checks on the wallet
paper (row-locked) and the draft (row-locked), the document's accepted types and
limits, one attachment row pointing at the wallet's stored object. Each request
goes to a fresh draft (seeded by bench/seed.py wallet), so every one creates an
attachment. One client, one request at a time, one keep-alive connection,
hello requests interleaved; the row is attach p50 ÷ hello p50.

Interleaved with them, for scale: a signed-in read of the paper (the bearer's
session and one row: the floor of any signed-in request), and the same attach
with an `Idempotency-Key` (as the app sends it: the claim and the kept answer
too) on drafts of its own. The proposed row is attach p50 ÷ that read's p50: what
the attach adds to the floor it cannot go below (authenticating, one round trip
to the database), which hello's noise moves less. Each request's server CPU
(the server process's CPU clock, all its threads) is a figure too:
on a loaded machine wall times wait for the cores, CPU times much less.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid

import httpx

from bench.harness import Context, Result, percentile, run_seed

PATH = "wallet attach"
ROW = "wallet attach (no byte copy) p50 ÷ hello p50"
PROPOSED_ROW = "wallet attach p50 ÷ signed-in read p50 (proposed)"
PROFILE_SECONDS = 8
# One client waiting on each answer: the profile samples the server's waits too
# (py-spy --idle), on drafts kept for it when the run profiles.
PROFILE_IDLE = True
PROFILE_DRAFTS = 500
_for_profile: dict[str, object] = {}


def server_cpu_ns(pid: int) -> int:
    """CPU time of the server process so far, every thread's (ended ones too), in
    nanoseconds: its process CPU clock (Linux's `clock_getcpuclockid`), precise where
    /proc/<pid>/stat counts clock ticks of 10 ms."""
    return time.clock_gettime_ns(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the process


def _timed(client: httpx.Client, method: str, url: str, **kwargs: object) -> float:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
    return elapsed


class _Kind:
    """One kind of request of the loop: wall seconds and server CPU ns of each."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[int] = []

    def time(
        self, pid: int, warm: bool, client: httpx.Client, method: str, url: str, **kwargs: object
    ) -> None:
        before = server_cpu_ns(pid)
        wall = _timed(client, method, url, **kwargs)
        cpu = server_cpu_ns(pid) - before
        if warm:
            self.wall.append(wall)
            self.cpu.append(cpu)

    def p50_ms(self) -> float:
        return percentile(self.wall, 0.5) * 1000

    def cpu_ms(self) -> float:
        return statistics.median(self.cpu) / 1e6


def _attach_url(ctx: Context, dossier_id: str) -> str:
    return f"{ctx.api_server.base_url}/api/v1/dossiers/{dossier_id}/wallet-attachments"


def workload(ctx: Context) -> None:
    """The measured requests again, for the profiler, on the drafts kept for it."""
    headers = {"Authorization": f"Bearer {_for_profile['access_token']}"}
    body = {"wallet_item_id": _for_profile["item_id"], "document_code": "doc-1"}
    deadline = time.monotonic() + PROFILE_SECONDS - 1
    with httpx.Client(timeout=30) as client:
        for dossier_id in _for_profile["dossier_ids"]:  # type: ignore[attr-defined]
            if time.monotonic() > deadline:
                break
            _timed(client, "POST", _attach_url(ctx, dossier_id), json=body, headers=headers)


def run(ctx: Context) -> list[Result]:
    rounds = 30 if ctx.quick else 150
    server = ctx.api_server
    spare = PROFILE_DRAFTS if ctx.profiling else 0
    measured = rounds + 5
    seeded = run_seed(
        {**ctx.env, "DOSSIER_OPEN_DRAFTS_MAX": "100000"},
        *("wallet", "--drafts", str(2 * measured + spare)),
    )
    drafts = seeded["dossier_ids"]
    _for_profile.update(seeded, dossier_ids=drafts[2 * measured :])
    headers = {"Authorization": f"Bearer {seeded['access_token']}"}
    body = {"wallet_item_id": seeded["item_id"], "document_code": "doc-1"}
    hello_url = f"{server.base_url}/bench/hello"
    item_url = f"{server.base_url}/api/v1/wallet/items/{seeded['item_id']}"
    attach, hello, read, keyed = _Kind(), _Kind(), _Kind(), _Kind()
    pid = server.pid
    with httpx.Client(timeout=30) as client:
        for index in range(measured):
            warm = index >= 5  # warm-up: the connection, the pool, the routes
            plain_url = _attach_url(ctx, drafts[index])
            keyed_url = _attach_url(ctx, drafts[measured + index])
            key = {**headers, "Idempotency-Key": str(uuid.uuid4())}
            attach.time(pid, warm, client, "POST", plain_url, json=body, headers=headers)
            hello.time(pid, warm, client, "GET", hello_url)
            read.time(pid, warm, client, "GET", item_url, headers=headers)
            keyed.time(pid, warm, client, "POST", keyed_url, json=body, headers=key)
    figures = {
        "requests": len(attach.wall),
        "attach_p50_ms": round(attach.p50_ms(), 2),
        "attach_p99_ms": round(percentile(attach.wall, 0.99) * 1000, 2),
        "hello_p50_ms": round(hello.p50_ms(), 2),
        "read_item_p50_ms": round(read.p50_ms(), 2),
        "attach_with_key_p50_ms": round(keyed.p50_ms(), 2),
        "server_cpu_ms": {
            "attach": round(attach.cpu_ms(), 2),
            "hello": round(hello.cpu_ms(), 2),
            "read_item": round(read.cpu_ms(), 2),
            "attach_with_key": round(keyed.cpu_ms(), 2),
        },
        "load_average": round(os.getloadavg()[0], 1),
    }
    return [
        Result(
            path=PATH,
            ratio_name=ROW,
            target="<= 2",
            ratio=attach.p50_ms() / hello.p50_ms(),
            figures=figures,
            measured_by="wall time per request, one client",
        ),
        Result(
            path=PATH,
            ratio_name=PROPOSED_ROW,
            target="<= 2",
            ratio=attach.p50_ms() / read.p50_ms(),
            figures=figures,
            measured_by="wall time per request, one client (the same requests)",
        ),
    ]
