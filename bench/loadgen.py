"""HTTP load on loopback, bounded in time and in requests.

`wrk` (Debian package) when it is installed, with a Lua script that sets the
headers and prints its figures as JSON; otherwise an asyncio + httpx generator
(slower: it then limits what it can measure, and the result says which one ran).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness import percentile

_WRK_SCRIPT = """
wrk.method = "%(method)s"
%(body)s
%(headers)s
done = function(summary, latency, requests)
  io.write("WRK_JSON ")
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "mean_us": %%f,'
    .. ' "errors_connect": %%d, "errors_read": %%d, "errors_write": %%d,'
    .. ' "errors_status": %%d, "errors_timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
"""


@dataclass
class Load:
    """What one load run measured."""

    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def figures(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
        }


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_load(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    connections: int = 32,
    seconds: float = 10.0,
    max_requests: int = 200_000,
    threads: int = 2,
    method: str = "GET",
    body: bytes = b"",
) -> Load:
    """`connections` requests in flight for `seconds`; every request sends `body`."""
    if wrk_available():
        return _wrk(url, headers or {}, connections, seconds, threads, method, body)
    return asyncio.run(
        _httpx_load(url, headers or {}, connections, seconds, max_requests, method, body)
    )


def _wrk(
    url: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    threads: int,
    method: str,
    body: bytes,
) -> Load:
    lines = "\n".join(
        f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items()
    )
    if not method.isalpha() or b"]==]" in body:
        raise ValueError("a method is a word, and the body must fit a Lua long string")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.lua"
        text = _WRK_SCRIPT % {
            "method": method.upper(),
            "body": f"wrk.body = [==[{body.decode()}]==]" if body else "",
            "headers": lines,
        }
        script.write_text(text, encoding="utf-8")
        done = subprocess.run(  # noqa: S603 - wrk from PATH, arguments built here
            [  # noqa: S607
                "wrk",
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    line = next(line for line in done.stdout.splitlines() if line.startswith("WRK_JSON "))
    data = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(value for key, value in data.items() if key.startswith("errors_"))
    return Load(
        tool="wrk",
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )


async def _httpx_load(
    url: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    max_requests: int,
    method: str = "GET",
    body: bytes = b"",
) -> Load:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    budget = max_requests

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, budget
        while budget > 0 and time.perf_counter() < deadline:
            budget -= 1
            started = time.perf_counter()
            try:
                response = await client.request(method, url, headers=headers, content=body or None)
                if response.status_code >= 400:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return Load(
        tool="python-httpx",
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        errors=errors,
    )
