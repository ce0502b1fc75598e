"""OTP: one SMS code sent and verified through the HTTP API, against hello-world.

The exchange the app makes to prove a phone number, on a pending sign-up:
`POST /auth/otp/resend` (a new code for the open challenge: the request whose
only work is issuing and texting a code) and `POST /auth/register/verify` (the
code is checked and spent, the account activated and the device signed in).
The sign-ups themselves are made beforehand by the real register action in a
helper process (bench/otp_seed.py), so the sign-up's password hash (PBKDF2,
run once per account on purpose) is neither timed nor profiled.

The SMS goes the real path: an API server of its own for this row and the
Procfile's worker, both with SMS_BACKEND=http against the fake brand-name
gateway (`fakes.sms_gateway`, the eSMS.vn wire format, in a thread of this
process). The send request only queues the job that makes and texts the code
(the request never waits for the gateway: auth/actions/challenges.py); the
worker texts it, and the code is read from what the gateway received, as the
phone would, waiting (untimed) until it is there and the worker is done with
its job (a citizen types the code seconds later) before the verify.

One client, one request at a time (latency, not throughput), one keep-alive
connection; hello requests interleaved with the exchanges. Each request is
timed on its own: the row is (send p50 + verify p50) ÷ (2 × hello p50), the
average OTP request against one hello request (floor 1.0: each request pays at
least the hello's HTTP, middleware and routing cost).

Measured side by side as well (figures, not the row): how long after the send
request started the code reached the gateway (`code_arrival`: what the citizen
waits for, request, queue and worker included); and the I/O an exchange cannot
do without, raw: the smallest durable write transaction on the same cluster
(`BEGIN; UPDATE` of one row `; COMMIT`, psycopg, one open connection: verifying
a code must commit durably) and one eSMS POST to the same fake gateway (pooled
httpx client: what the worker waits for), with `floor_ratio` = (send p50 +
verify p50) ÷ (2 × hello p50 + commit p50 + gateway p50), kept from when the
POST was inside the send request.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid

import httpx
import psycopg

from bench.harness import PYTHON, Context, Result, Server, percentile
from bench.push import Worker
from fakes.sms_gateway import FakeGateway

PATH = "OTP"
CODE_RE = re.compile(r"\D*(\d{6})\b")
PROFILE_SECONDS = 10
PROFILE_EXCHANGES = 400  # more than 10 s of exchanges on this machine
CODE_WAIT_SECONDS = 30  # a code not at the gateway by then: the worker is stuck


def _timed(client: httpx.Client, method: str, url: str, **kwargs: object) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
    return elapsed, response.json() if response.content else {}


def _last_code(gateway: FakeGateway, phone: str, after: int) -> str | None:
    """The code in the last SMS the gateway received for `phone` among the messages
    past the first `after` (the message received for this request), if any yet."""
    for message in reversed(gateway.messages[after:]):
        if message.get("Phone") == phone.lstrip("+"):
            match = CODE_RE.match(message.get("Content", ""))
            if match:
                return match.group(1)
    return None


def _wait_for_code(gateway: FakeGateway, phone: str, after: int) -> str:
    """The code the worker texted for this request, once the gateway has it."""
    deadline = time.monotonic() + CODE_WAIT_SECONDS
    while (code := _last_code(gateway, phone, after)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway received no code for {phone}")
        time.sleep(0.0005)
    return code


SMS_KEYS = {"api_key": "bench-sms-key", "secret_key": "bench-sms-secret", "brandname": "DVCONG"}


def _wait_for_a_worker(database_url: str, worker: Worker) -> None:
    """Until the worker registered itself in the queue (it then listens for jobs)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(database_url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone() == (0,):
            worker.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start; see {worker.log_path}")
            time.sleep(0.1)


class _OtpServer:
    """The fake SMS gateway, and an API server and a worker that text through it
    (SMS_BACKEND=http): the server queues each code's job, the worker sends it."""

    def __init__(self, ctx: Context) -> None:
        ctx.api_server  # noqa: B018 - migrates and seeds the database first
        self.gateway = FakeGateway(
            SMS_KEYS["api_key"], SMS_KEYS["secret_key"], SMS_KEYS["brandname"]
        )
        self.gateway.start()
        self.gateway.balance = 10**9
        env = {
            **ctx.env,
            "SMS_BACKEND": "http",
            "SMS_HTTP_URL": self.gateway.url,
            "SMS_API_KEY": SMS_KEYS["api_key"],
            "SMS_SECRET_KEY": SMS_KEYS["secret_key"],
            "SMS_BRANDNAME": SMS_KEYS["brandname"],
        }
        self.worker = Worker(env, "worker-otp")
        try:
            self.server = Server("bench.asgi:application", env, "api-otp").start()
            # After the server is up (on two cores their start-ups slowed each other
            # past the readiness timeout), and ready once it registered itself.
            self.worker.start()
            _wait_for_a_worker(env["DATABASE_URL"], self.worker)
        except BaseException:
            self.worker.stop()
            self.gateway.stop()
            raise

    def stop(self) -> None:
        try:
            self.server.stop()
            self.worker.stop()
        finally:
            self.gateway.stop()


_otp: _OtpServer | None = None  # kept for the profile, if one follows (profile_pid)


def otp_server(ctx: Context) -> _OtpServer:
    global _otp
    if _otp is None:
        _otp = _OtpServer(ctx)
        ctx.on_close(_stop_otp_server)
        ctx.commands.append(" ".join(_otp.server.argv) + "  # SMS_BACKEND=http, fake gateway")
        ctx.commands.append(" ".join(_otp.worker.argv) + "  # the same settings")
    return _otp


def _stop_otp_server() -> None:
    global _otp
    if _otp is not None:
        _otp.stop()
        _otp = None


def profile_pid(ctx: Context) -> int:
    """The process the profiler samples: this row's API server."""
    return otp_server(ctx).server.pid


_next_number = 7_000_000
_spare: list[dict[str, str]] = []  # made by run() for the profile, if one follows


def pending_sign_ups(ctx: Context, count: int) -> list[dict[str, str]]:
    """`count` open sign-up challenges, made outside the server (bench/otp_seed.py)."""
    global _next_number
    ctx.api_server  # noqa: B018 - migrates and seeds the database first
    done = subprocess.run(  # noqa: S603 - our interpreter and module
        [PYTHON, "-m", "bench.otp_seed", str(_next_number), str(count)],
        env=ctx.env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"creating pending sign-ups failed:\n{done.stderr}")
    _next_number += count
    pending: list[dict[str, str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return pending


FLOOR_PHONE = "84900000000"  # the floor's own messages, never an exchange's number


class _Flow:
    """Send + verify exchanges through the API, each request timed."""

    def __init__(self, ctx: Context) -> None:
        otp = otp_server(ctx)
        self.base_url = otp.server.base_url
        self.gateway = otp.gateway
        self.client = httpx.Client(timeout=30)
        self.send_s: list[float] = []
        self.arrival_s: list[float] = []
        self.verify_s: list[float] = []
        self.hello_s: list[float] = []
        self.commit_s: list[float] = []
        self.gateway_s: list[float] = []
        self.database_url = ctx.env["DATABASE_URL"]
        self._db: psycopg.Connection | None = None
        self._jobs = psycopg.connect(self.database_url, autocommit=True)
        self._sms: httpx.Client | None = None

    def floor(self) -> None:
        """One durable one-row write transaction and one gateway POST, raw."""
        if self._db is None:
            self._db = psycopg.connect(self.database_url, autocommit=True)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS bench_otp_floor (id int PRIMARY KEY, n bigint)"
            )
            self._db.execute("INSERT INTO bench_otp_floor VALUES (1, 0) ON CONFLICT DO NOTHING")
            self._sms = httpx.Client(timeout=30)
        assert self._sms is not None  # noqa: S101 - made with the connection
        started = time.perf_counter()
        with self._db.transaction():
            self._db.execute("UPDATE bench_otp_floor SET n = n + 1 WHERE id = 1")
        self.commit_s.append(time.perf_counter() - started)
        payload = {
            "ApiKey": SMS_KEYS["api_key"],
            "SecretKey": SMS_KEYS["secret_key"],
            "Phone": FLOOR_PHONE,
            "Content": "000000 là mã xác thực (bench floor)",
            "Brandname": SMS_KEYS["brandname"],
            "SmsType": "2",
            "IsUnicode": "1",
            "RequestId": uuid.uuid4().hex,
        }
        started = time.perf_counter()
        response = self._sms.post(self.gateway.url, json=payload)
        self.gateway_s.append(time.perf_counter() - started)
        if response.json().get("CodeResult") != "100":
            raise RuntimeError(f"the gateway refused the floor's message: {response.text[:200]}")

    def _wait_for_worker(self) -> None:
        """Until the worker finished the SMS job (marked it done): the verify is then
        timed alone, as when the citizen types the code seconds after it arrived."""
        deadline = time.monotonic() + CODE_WAIT_SECONDS
        while self._jobs.execute(
            "SELECT count(*) FROM procrastinate_jobs "
            "WHERE queue_name = 'sms' AND status IN ('todo', 'doing')"
        ).fetchone() != (0,):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not finish the SMS job")
            time.sleep(0.001)

    def hello(self) -> None:
        self.hello_s.append(_timed(self.client, "GET", f"{self.base_url}/bench/hello")[0])

    def exchange(self, pending: dict[str, str]) -> None:
        base = f"{self.base_url}/api/v1/auth"
        phone, challenge_id = pending["phone"], pending["challenge_id"]
        received = len(self.gateway.messages)
        started = time.perf_counter()
        elapsed, _ = _timed(
            self.client, "POST", f"{base}/otp/resend", json={"challenge_id": challenge_id}
        )
        self.send_s.append(elapsed)
        code = _wait_for_code(self.gateway, phone, received)
        self.arrival_s.append(time.perf_counter() - started)
        self._wait_for_worker()
        elapsed, tokens = _timed(
            self.client,
            "POST",
            f"{base}/register/verify",
            json={
                "challenge_id": challenge_id,
                "code": code,
                "device_id": uuid.uuid4().hex,
                "device_name": "bench",
                "platform": "android",
                "app_version": "1.0.0",
            },
        )
        if not tokens.get("access_token"):
            raise RuntimeError("the verification gave no access token")
        self.verify_s.append(elapsed)

    def close(self) -> None:
        self.client.close()
        self._jobs.close()
        if self._sms is not None:
            self._sms.close()
        if self._db is not None:
            self._db.close()


def workload(ctx: Context) -> None:
    """Send + verify exchanges for the profiler's duration (sign-ups made before)."""
    pending = _spare or pending_sign_ups(ctx, PROFILE_EXCHANGES)
    flow = _Flow(ctx)
    deadline = time.monotonic() + PROFILE_SECONDS - 1
    try:
        for item in pending:
            if time.monotonic() >= deadline:
                break
            flow.exchange(item)
    finally:
        flow.close()


def run(ctx: Context) -> list[Result]:
    rounds = 20 if ctx.quick else 100
    pending = pending_sign_ups(ctx, rounds + 5 + PROFILE_EXCHANGES)
    _spare[:] = pending[rounds + 5 :]
    pending = pending[: rounds + 5]
    flow = _Flow(ctx)
    try:
        for item in pending[:5]:  # warm-up: both routes, the connection, the pool
            flow.exchange(item)
        for _ in range(20):
            flow.hello()
        for _ in range(5):
            flow.floor()
        flow.send_s.clear()
        flow.arrival_s.clear()
        flow.verify_s.clear()
        flow.hello_s.clear()
        flow.commit_s.clear()
        flow.gateway_s.clear()
        for item in pending[5:]:
            flow.exchange(item)
            for _ in range(3):
                flow.hello()
            flow.floor()
    finally:
        flow.close()
    send_s, verify_s, hello_s = flow.send_s, flow.verify_s, flow.hello_s
    hello = percentile(hello_s, 0.5)
    send, verify = percentile(send_s, 0.5), percentile(verify_s, 0.5)
    commit, gateway = percentile(flow.commit_s, 0.5), percentile(flow.gateway_s, 0.5)
    pairs = [a + b for a, b in zip(send_s, verify_s, strict=True)]

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    figures = {
        "exchanges": rounds,
        "hello_requests": len(hello_s),
        "hello_p50_ms": ms(hello),
        "hello_p99_ms": ms(percentile(hello_s, 0.99)),
        "send_p50_ms": ms(send),
        "send_p99_ms": ms(percentile(send_s, 0.99)),
        "verify_p50_ms": ms(verify),
        "verify_p99_ms": ms(percentile(verify_s, 0.99)),
        "send_p50_plus_verify_p50_ms": ms(send + verify),
        "exchange_p50_ms": ms(percentile(pairs, 0.5)),
        "exchange_p99_ms": ms(percentile(pairs, 0.99)),
        "code_arrival_p50_ms": ms(percentile(flow.arrival_s, 0.5)),
        "code_arrival_p99_ms": ms(percentile(flow.arrival_s, 0.99)),
        "send_p50_over_hello_p50": round(send / hello, 2),
        "verify_p50_over_hello_p50": round(verify / hello, 2),
        "exchange_p50_over_hello_p50": round((send + verify) / hello, 2),
        "sms_backend": "http (fakes.sms_gateway)",
        "sms_received_by_gateway": len(
            [m for m in flow.gateway.messages if m.get("Phone") != FLOOR_PHONE]
        ),
        "floor_durable_commit_p50_ms": ms(commit),
        "floor_gateway_post_p50_ms": ms(gateway),
        "floor_ratio": round((send + verify) / (2 * hello + commit + gateway), 2),
    }
    return [
        Result(
            path=PATH,
            ratio_name="(send p50 + verify p50) ÷ (2 × hello p50)",
            target="<= 2.0",
            ratio=(send + verify) / (2 * hello),
            figures=figures,
            measured_by=(
                "python-httpx, sequential, one keep-alive connection; SMS over HTTP by the worker"
            ),
            notes=[
                "two OTP requests against two hello requests: the floor is 1.0; the send "
                "request queues the SMS job, the worker texts the code over HTTP to the fake "
                "gateway, and the verify waits (untimed) until the gateway has it and the "
                "job is done (code_arrival: from the send request's start)"
            ],
        )
    ]
