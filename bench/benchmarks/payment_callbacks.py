"""Payment callbacks: the gateway's signed IPN under 32 concurrent callers, against hello.

Payments waiting for their callback are made beforehand by the real actions in
a helper process (bench/payment_seed.py). Then 32 concurrent clients send
VNPay IPN calls (GET with the signed query, signed by the fake gateway's own
code) to `/api/v1/payments/gateways/vnpay/callback`: every payment's callback is
sent twice, the copies at the same moment on different connections (VNPay
retries and duplicates), so half the calls settle a payment (lock the request and
the payment, record the payment, move the dossier 6 → 4 with its event and push
job) and half find it settled. Hello is measured the same way, 32 concurrent
clients, as many calls. The payments are split into ROUNDS rounds, each a phase of
callbacks and a phase of hellos, which goes first alternating. Rows: the median of
the rounds' callback p50 ÷ hello p50; the median of the rounds' server CPU per
callback ÷ per hello (proposed: what the p50 ratio follows, since both loads queue
behind the one server process); and duplicates (any dossier with more than one
`dossier.payment_received` event, or a request with more than one counted
payment), which must be zero.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
import urllib.parse

import httpx

from bench.benchmarks.dossier_read import cpu_seconds
from bench.harness import PYTHON, Context, Result, percentile

PATH = "payment callbacks"
P50_ROW = "callback handling p50 ÷ hello p50 (32 concurrent callbacks), median of rounds"
CPU_ROW = "server CPU per callback ÷ per hello, median of rounds (proposed)"
DUPLICATES_ROW = "duplicates (payments counted or events written twice)"
CONCURRENCY = 32
# Rounds of callbacks and hellos, alternating which goes first; the rows are the
# medians of the rounds' ratios (one hello phase's CPU per request moved 1.65-3.4 ms
# between runs of the same code when each load was measured once).
ROUNDS = 5
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


def _phase(server: int, urls: list[str]) -> tuple[list[float], list[str], float]:
    """The calls' times, their answers, and the server's CPU seconds meanwhile."""
    started = cpu_seconds(server)
    times, answers = asyncio.run(_timed_calls(urls))
    return times, answers, cpu_seconds(server) - started


def run(ctx: Context) -> list[Result]:
    count = 250 if ctx.quick else 500
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
    server = ctx.api_server.pid
    per_round = len(timed) // ROUNDS
    rounds: list[dict[str, float]] = []
    callback_s: list[float] = []
    hello_s: list[float] = []
    answers: list[str] = []
    for number in range(ROUNDS):
        chunk = timed[number * per_round : (number + 1) * per_round]
        twice = [u for u in chunk for _ in range(2)]  # each copy next to its twin
        hellos = [f"{base}/bench/hello"] * len(twice)
        # Alternating which load goes first, so that neither always meets the
        # machine's state the other left (a warm cache, a busy neighbour).
        if number % 2:
            hello = _phase(server, hellos)
            callback = _phase(server, twice)
        else:
            callback = _phase(server, twice)
            hello = _phase(server, hellos)
        callback_s += callback[0]
        hello_s += hello[0]
        answers += callback[1]
        rounds.append(
            {
                "callback_p50_ms": percentile(callback[0], 0.5) * 1000,
                "hello_p50_ms": percentile(hello[0], 0.5) * 1000,
                "server_cpu_ms_per_callback": callback[2] * 1000 / len(twice),
                "server_cpu_ms_per_hello": hello[2] * 1000 / len(hellos),
            }
        )
    settled = [
        str(p["dossier_id"]) for p in payments[CONCURRENCY : CONCURRENCY + per_round * ROUNDS]
    ]
    counts = _duplicates(ctx, settled)
    p50_ratios = [r["callback_p50_ms"] / r["hello_p50_ms"] for r in rounds]
    cpu_ratios = [
        r["server_cpu_ms_per_callback"] / max(r["server_cpu_ms_per_hello"], 1e-9) for r in rounds
    ]

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    def each(key: str) -> list[float]:
        return [round(r[key], 2) for r in rounds]

    figures = {
        "payments": len(settled),
        "callbacks": len(answers),
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "answers_00": answers.count("00"),
        "answers_02": answers.count("02"),
        "other_answers": len(answers) - answers.count("00") - answers.count("02"),
        "callback_p50_ms": ms(percentile(callback_s, 0.5)),
        "callback_p99_ms": ms(percentile(callback_s, 0.99)),
        "hello_p50_ms": ms(percentile(hello_s, 0.5)),
        "hello_p99_ms": ms(percentile(hello_s, 0.99)),
        "p50_ratio_per_round": [round(r, 3) for r in p50_ratios],
        # Both loads queue behind the one server process (its Python work is serial):
        # the p50 ratio follows its CPU per request of each load.
        "server_cpu_ms_per_callback": each("server_cpu_ms_per_callback"),
        "server_cpu_ms_per_hello": each("server_cpu_ms_per_hello"),
        "server_cpu_ratio_per_round": [round(r, 3) for r in cpu_ratios],
        "server_cpu_ratio": round(statistics.median(cpu_ratios), 3),
        **counts,
    }
    duplicates = counts["duplicate_events"] + counts["duplicate_counted"]
    if counts["settled_dossiers"] != len(settled):
        raise RuntimeError(f"not every payment was settled: {figures}")
    measured_by = f"python-httpx asyncio, 32 keep-alive connections, {ROUNDS} alternating rounds"
    return [
        Result(
            path=PATH,
            ratio_name=P50_ROW,
            target="<= 3.0",
            ratio=statistics.median(p50_ratios),
            figures=figures,
            measured_by=measured_by,
        ),
        Result(
            path=PATH,
            ratio_name=CPU_ROW,
            target="<= 3.0",
            ratio=statistics.median(cpu_ratios),
            figures=figures,
            measured_by=f"server CPU time (/proc), {ROUNDS} alternating rounds",
        ),
        Result(
            path=PATH,
            ratio_name=DUPLICATES_ROW,
            target="<= 0",
            ratio=float(duplicates),
            figures=figures,
            measured_by="database counts after the run",
        ),
    ]
