"""Wallet attach: a draft's document taken from the wallet (no byte copy), against hello.

`POST /api/v1/dossiers/{id}/wallet-attachments`: access checks on the wallet
paper (row-locked) and the draft (row-locked), the document's accepted types and
limits, one attachment row pointing at the wallet's stored object. Each request
goes to a fresh draft (seeded by bench/seed.py wallet), so every one creates an
attachment. One client, one request at a time, one keep-alive connection,
hello requests interleaved; the row is attach p50 ÷ hello p50.
"""

from __future__ import annotations

import time

import httpx

from bench.harness import Context, Result, percentile, run_seed

PATH = "wallet attach"
PROFILE_SECONDS = 8
# One client waiting on each answer: the profile samples the server's waits too
# (py-spy --idle), on drafts kept for it when the run profiles.
PROFILE_IDLE = True
PROFILE_DRAFTS = 500
_for_profile: dict[str, object] = {}


def _timed(client: httpx.Client, method: str, url: str, **kwargs: object) -> float:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
    return elapsed


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
    seeded = run_seed(
        {**ctx.env, "DOSSIER_OPEN_DRAFTS_MAX": "100000"},
        *("wallet", "--drafts", str(rounds + 5 + spare)),
    )
    _for_profile.update(seeded, dossier_ids=seeded["dossier_ids"][rounds + 5 :])
    seeded["dossier_ids"] = seeded["dossier_ids"][: rounds + 5]
    headers = {"Authorization": f"Bearer {seeded['access_token']}"}
    body = {"wallet_item_id": seeded["item_id"], "document_code": "doc-1"}
    hello_url = f"{server.base_url}/bench/hello"
    attach_s: list[float] = []
    hello_s: list[float] = []
    read_s: list[float] = []  # an authenticated read of the paper, for scale
    item_url = f"{server.base_url}/api/v1/wallet/items/{seeded['item_id']}"
    with httpx.Client(timeout=30) as client:
        for index, dossier_id in enumerate(seeded["dossier_ids"]):
            attach = _timed(
                client, "POST", _attach_url(ctx, dossier_id), json=body, headers=headers
            )
            hello = _timed(client, "GET", hello_url)
            read = _timed(client, "GET", item_url, headers=headers)
            if index >= 5:  # warm-up: the connection, the pool, the routes
                attach_s.append(attach)
                hello_s.append(hello)
                read_s.append(read)
    attach_p50 = percentile(attach_s, 0.5) * 1000
    hello_p50 = percentile(hello_s, 0.5) * 1000
    return [
        Result(
            path=PATH,
            ratio_name="wallet attach (no byte copy) p50 ÷ hello p50",
            target="<= 2",
            ratio=attach_p50 / hello_p50,
            figures={
                "requests": len(attach_s),
                "attach_p50_ms": round(attach_p50, 2),
                "attach_p99_ms": round(percentile(attach_s, 0.99) * 1000, 2),
                "hello_p50_ms": round(hello_p50, 2),
                "read_item_p50_ms": round(percentile(read_s, 0.5) * 1000, 2),
            },
            measured_by="wall time per request, one client",
        )
    ]
