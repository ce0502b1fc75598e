"""Payment callbacks: the gateway's signed IPN under 32 concurrent callers, against hello.

Payments waiting for their callback are made beforehand by the real actions in
a helper process (bench/payment_seed.py). Then 32 concurrent clients send
VNPay IPN calls (GET with the signed query, signed by the fake gateway's own
code) to `/api/v1/payments/gateways/vnpay/callback`: every payment's callback is
sent twice, the copies at the same moment on different connections (VNPay
retries and duplicates), so half the calls settle a payment (lock the request and
the payment, record the payment, move the dossier 6 → 4 with its event and push
job) and half find it settled. Hello is measured the same way, 32 concurrent
clients, right after. The row is callback p50 ÷ hello p50, with the server's CPU
time per request of each load beside it; the run also counts
duplicates (any dossier with more than one `dossier.payment_received` event, or
a request with more than one counted payment), which must be zero.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.parse

import httpx

from bench.benchmarks.dossier_read import cpu_seconds
from bench.harness import PYTHON, Context, Result, percentile

PATH = "payment callbacks"
CONCURRENCY = 32
PROFILE_SECONDS = 8
# Payments kept waiting for `bench.run --profile` (made with the row's, so that their
# making is not sampled): the profile replays the row's mix, each callback twice.
PROFILE_PAYMENTS = 300
_for_profile: list[str] = []


def _payments(ctx: Context, count: int) -> list[dict[str, object]]:
    ctx.api_server  # noqa: B018 - migrates and seeds the database first
    done = subprocess.run(  # noqa: S603 - our interpreter and module
        [PYTHON, "-m", "bench.payment_seed", str(count)],
        env=ctx.env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"creating payments failed:\n{done.stderr[-3000:]}")
    payments: list[dict[str, object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return payments


def _ipn_query(payment: dict[str, object], tmn_code: str, secret: str, number: int) -> str:
    from fakes.payment_gateway import vnpay_hash

    params = {
        "vnp_Amount": str(int(str(payment["amount"])) * 100),
        "vnp_BankCode": "NCB",
        "vnp_OrderInfo": "bench",
        "vnp_PayDate": time.strftime("%Y%m%d%H%M%S"),
        "vnp_ResponseCode": "00",
        "vnp_TmnCode": tmn_code,
        "vnp_TransactionNo": str(number),
        "vnp_TransactionStatus": "00",
        "vnp_TxnRef": str(payment["order_ref"]),
    }
    params["vnp_SecureHash"] = vnpay_hash(secret, params)
    return urllib.parse.urlencode(params)


async def _timed_calls(urls: list[str]) -> tuple[list[float], list[str]]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    times: list[float] = []
    answers: list[str] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                url = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            response = await client.get(url)
            times.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{url[:80]} answered {response.status_code}")
            if "RspCode" in response.text:
                answers.append(response.json()["RspCode"])

    clients = [httpx.AsyncClient(timeout=60) for _ in range(CONCURRENCY)]
    try:
        await asyncio.gather(*(worker(client) for client in clients))
    finally:
        for client in clients:
            await client.aclose()
    return times, answers


def _duplicates(ctx: Context, dossier_ids: list[str]) -> dict[str, int]:
    code = (
        "import json\n"
        "from django.db.models import Count\n"
        "from payments.models import Payment\n"
        "from dossiers.models import DossierEvent\n"
        f"ids = {dossier_ids!r}\n"
        "events = DossierEvent.objects.filter(dossier_id__in=ids, type='dossier.payment_received')"
        ".values('dossier_id').annotate(n=Count('pk'))\n"
        "counted = Payment.objects.filter(dossier_id__in=ids, counted=True)"
        ".values('request_id').annotate(n=Count('pk'))\n"
        "print(json.dumps({'settled_dossiers': len(events),"
        " 'duplicate_events': sum(e['n'] - 1 for e in events),"
        " 'duplicate_counted': sum(c['n'] - 1 for c in counted)}))\n"
    )
    done = subprocess.run(  # noqa: S603 - our interpreter and manage.py
        [PYTHON, "manage.py", "shell", "-c", code],
        env=ctx.env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"counting duplicates failed:\n{done.stderr[-3000:]}")
    counts: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return counts


def workload(ctx: Context) -> None:
    """The measured load again, for the profiler: the spare payments' callbacks, twice each."""
    asyncio.run(_timed_calls([u for u in _for_profile for _ in range(2)]))
    _for_profile.clear()


def run(ctx: Context) -> list[Result]:
    count = 100 if ctx.quick else 400
    spare = PROFILE_PAYMENTS if ctx.profiling else 0
    made = _payments(ctx, count + CONCURRENCY + spare)
    payments = made[: count + CONCURRENCY]
    base = ctx.api_server.base_url
    tmn = ctx.env.get("PAYMENT_VNPAY_TMN_CODE", "DEMO0001")
    secret = ctx.env.get("PAYMENT_VNPAY_HASH_SECRET", "demo-vnpay-hash-secret")  # nosec B105
    path = f"{base}/api/v1/payments/gateways/vnpay/callback"
    urls = [f"{path}?{_ipn_query(p, tmn, secret, 20_000_000 + i)}" for i, p in enumerate(made)]
    warm, timed = urls[:CONCURRENCY], urls[CONCURRENCY : count + CONCURRENCY]
    _for_profile[:] = urls[count + CONCURRENCY :]
    asyncio.run(_timed_calls([u for u in warm for _ in range(2)]))
    asyncio.run(_timed_calls([f"{base}/bench/hello"] * CONCURRENCY * 4))
    twice = [u for u in timed for _ in range(2)]  # each copy next to its twin
    server = ctx.api_server.pid
    started = cpu_seconds(server)
    callback_s, answers = asyncio.run(_timed_calls(twice))
    callback_cpu = cpu_seconds(server) - started
    started = cpu_seconds(server)
    hello_s, _ = asyncio.run(_timed_calls([f"{base}/bench/hello"] * len(twice)))
    hello_cpu = cpu_seconds(server) - started
    counts = _duplicates(ctx, [str(p["dossier_id"]) for p in payments[CONCURRENCY:]])
    callback, hello = percentile(callback_s, 0.5), percentile(hello_s, 0.5)

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    figures = {
        "payments": len(timed),
        "callbacks": len(twice),
        "concurrency": CONCURRENCY,
        "answers_00": answers.count("00"),
        "answers_02": answers.count("02"),
        "other_answers": len(answers) - answers.count("00") - answers.count("02"),
        "callback_p50_ms": ms(callback),
        "callback_p99_ms": ms(percentile(callback_s, 0.99)),
        "hello_p50_ms": ms(hello),
        "hello_p99_ms": ms(percentile(hello_s, 0.99)),
        # Both loads queue behind the one server process (its Python work is serial):
        # the p50 ratio follows its CPU per request of each load.
        "server_cpu_ms_per_callback": ms(callback_cpu / len(twice)),
        "server_cpu_ms_per_hello": ms(hello_cpu / len(twice)),
        "server_cpu_ratio": round(callback_cpu / max(hello_cpu, 1e-9), 2),
        **counts,
    }
    duplicates = counts["duplicate_events"] + counts["duplicate_counted"]
    if counts["settled_dossiers"] != len(timed):
        raise RuntimeError(f"not every payment was settled: {figures}")
    return [
        Result(
            path=PATH,
            ratio_name="callback handling p50 ÷ hello p50 (32 concurrent callbacks)",
            target="<= 3.0",
            ratio=callback / hello,
            figures=figures,
            measured_by="python-httpx asyncio, 32 keep-alive connections",
        ),
        Result(
            path=PATH,
            ratio_name="duplicates (payments counted or events written twice)",
            target="<= 0",
            ratio=float(duplicates),
            figures=figures,
            measured_by="database counts after the run",
        ),
    ]
