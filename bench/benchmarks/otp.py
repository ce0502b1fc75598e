"""OTP: sign-up code sent and verified through the HTTP API, against hello-world.

One client, one request at a time (latency, not throughput), on the API server
with the file SMS backend: register (the code is texted to OUTBOX_DIR/sms.jsonl,
read from there like the app reads the SMS), then verify. Also, in the same
loop, a resend of the code: resend + verify is the OTP work without the
password hash of the sign-up, reported next to the target ratio.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx

from bench.harness import Context, Result, percentile

PATH = "OTP"
CODE_RE = re.compile(r"\D*(\d{6})\b")
PASSWORD = "bench-Passw0rd!2026"  # noqa: S105 - a throwaway bench account


def _timed(client: httpx.Client, method: str, url: str, **kwargs: object) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
    return elapsed, response.json() if response.content else {}


def _last_code(outbox: Path, phone: str) -> str:
    for line in reversed(outbox.read_text(encoding="utf-8").splitlines()):
        message = json.loads(line)
        if message["to"] == phone and message["purpose"].startswith("otp."):
            match = CODE_RE.match(message["text"])
            if match:
                return match.group(1)
    raise RuntimeError(f"no code was texted to {phone}")


class _Flow:
    """Sign-ups through the API, each timed step kept."""

    def __init__(self, ctx: Context) -> None:
        self.base_url = ctx.api_server.base_url
        self.outbox = Path(ctx.env["OUTBOX_DIR"]) / "sms.jsonl"
        self.client = httpx.Client(timeout=30)
        self.register_s: list[float] = []
        self.resend_s: list[float] = []
        self.verify_s: list[float] = []
        self.hello_s: list[float] = []

    def hello(self) -> None:
        self.hello_s.append(_timed(self.client, "GET", f"{self.base_url}/bench/hello")[0])

    def sign_up(self) -> None:
        global _phones
        _phones += 1
        phone = f"+8491{_phones:07d}"
        base = f"{self.base_url}/api/v1/auth"
        elapsed, challenge = _timed(
            self.client,
            "POST",
            f"{base}/register",
            json={"phone": phone, "full_name": "Trần Thị Bench", "password": PASSWORD},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        self.register_s.append(elapsed)
        first_code = _last_code(self.outbox, phone)
        elapsed, _ = _timed(
            self.client,
            "POST",
            f"{base}/otp/resend",
            json={"challenge_id": challenge["challenge_id"]},
        )
        self.resend_s.append(elapsed)
        code = _last_code(self.outbox, phone)
        if code == first_code:
            raise RuntimeError("the resent code is the same as the first one")
        elapsed, _ = _timed(
            self.client,
            "POST",
            f"{base}/register/verify",
            json={
                "challenge_id": challenge["challenge_id"],
                "code": code,
                "device_id": uuid.uuid4().hex,
                "device_name": "bench",
                "platform": "android",
                "app_version": "1.0.0",
            },
        )
        self.verify_s.append(elapsed)

    def close(self) -> None:
        self.client.close()


_phones = 7_000_000
PROFILE_SECONDS = 10


def workload(ctx: Context) -> None:
    """Sign-ups for the profiler's duration."""
    flow = _Flow(ctx)
    deadline = time.monotonic() + PROFILE_SECONDS - 1
    try:
        while time.monotonic() < deadline:
            flow.sign_up()
    finally:
        flow.close()


def run(ctx: Context) -> list[Result]:
    rounds = 15 if ctx.quick else 60
    flow = _Flow(ctx)
    try:
        for _ in range(20):  # warm-up
            flow.hello()
        flow.hello_s.clear()
        for _ in range(rounds):
            flow.sign_up()
            for _ in range(5):
                flow.hello()
    finally:
        flow.close()
    register_s, resend_s, verify_s, hello_s = (
        flow.register_s,
        flow.resend_s,
        flow.verify_s,
        flow.hello_s,
    )
    send_verify = [a + b for a, b in zip(register_s, verify_s, strict=True)]
    resend_verify = [a + b for a, b in zip(resend_s, verify_s, strict=True)]
    hello_p50 = percentile(hello_s, 0.5)

    def ms(values: list[float], fraction: float = 0.5) -> float:
        return round(percentile(values, fraction) * 1000, 2)

    figures = {
        "sign_ups": rounds,
        "hello_requests": len(hello_s),
        "hello_p50_ms": ms(hello_s),
        "register_p50_ms": ms(register_s),
        "verify_p50_ms": ms(verify_s),
        "register_plus_verify_p50_ms": ms(send_verify),
        "register_plus_verify_p99_ms": ms(send_verify, 0.99),
        "resend_p50_ms": ms(resend_s),
        "resend_plus_verify_p50_ms": ms(resend_verify),
        "resend_plus_verify_p50_over_hello_p50": round(
            percentile(resend_verify, 0.5) / hello_p50, 2
        ),
    }
    return [
        Result(
            path=PATH,
            ratio_name="register+verify p50 ÷ hello p50",
            target="<= 1.5",
            ratio=percentile(send_verify, 0.5) / hello_p50,
            figures=figures,
            measured_by="python-httpx, sequential, one keep-alive connection",
        )
    ]
