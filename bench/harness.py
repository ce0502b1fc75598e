"""What every benchmark shares: results, statistics, the bench database, the server.

The server is started as the Procfile's `web` command (same uvicorn flags), on a
free loopback port, against real PostgreSQL and Redis with a dedicated bench
database (dropped and migrated at each run) and Redis database. Processes,
databases and readiness waits are the shared harness of `fakes/harness.py`
(the end-to-end tests use it too).
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fakes import harness

# Re-exported: the benchmarks import them from here.
from fakes.harness import PYTHON as PYTHON
from fakes.harness import flush_redis as flush_redis
from fakes.harness import free_port as free_port

BASE_DIR = harness.ROOT
VAR_DIR = BASE_DIR / "var" / "bench"

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/citizen_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"


class NotAvailable(Exception):
    """A benchmark that cannot run here (yet); the message says why."""


@dataclass
class Result:
    """One ratio of the issue's table, with the figures it was computed from."""

    path: str
    ratio_name: str
    target: str  # e.g. ">= 0.45", "<= 1.0"
    ratio: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    measured_by: str = ""
    not_available: str = ""  # the reason, when the ratio could not be measured
    notes: list[str] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)  # where the target was missed

    @property
    def met(self) -> bool | None:
        if self.ratio is None:
            return None
        op, _, bound = self.target.partition(" ")
        limit = float(bound)
        return self.ratio >= limit if op == ">=" else self.ratio <= limit

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["met"] = self.met
        if self.not_available:
            data["status"] = f"not available: {self.not_available}"
        else:
            data["status"] = "met" if self.met else "missed"
        return data


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def rss_bytes(pid: int) -> int:
    """Resident memory of a running process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise NotAvailable(f"no VmRSS for process {pid}")


# --- Environment -------------------------------------------------------------------


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every process the benchmarks start (server, seed, migrate)."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": "0",
            "JOBS_INLINE": "0",
            "SMS_BACKEND": "file",
            "PUSH_BACKEND": "file",
            "OUTBOX_DIR": str(VAR_DIR / "outbox"),
            "MEDIA_ROOT": str(VAR_DIR / "media"),
            "LOG_LEVEL": "WARNING",
            # As recommended for production in the README (Deploying).
            "DATABASE_POOL": "1",
            # A run must not trip the anti-abuse limits: the checks still run, the
            # thresholds are only out of reach (all requests come from 127.0.0.1).
            "ACCESS_TOKEN_TTL_SECONDS": "3600",
            "SMS_RESEND_SECONDS": "0",
            "SMS_PER_IP_PER_DAY": "1000000",
            "SMS_GLOBAL_PER_DAY": "1000000",
            "PYTHONPATH": str(BASE_DIR),
        }
    )
    env.pop("TEST_DATABASE_NAME", None)
    # Extra settings for a variant run, e.g. BENCH_SERVER_ENV="DATABASE_POOL=1".
    for item in os.environ.get("BENCH_SERVER_ENV", "").split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            env[name] = value
    env.update(extra)
    return env


def recreate_database(database_url: str) -> None:
    """Drop and create the bench database (never the project's or the tests')."""
    name = urlsplit(database_url).path.lstrip("/")
    if not re.fullmatch(r"[a-z0-9_]*bench[a-z0-9_]*", name):
        raise SystemExit(
            f"refusing to recreate {name!r}: the bench database name must contain 'bench'"
        )
    harness.recreate_database(database_url)


def manage(*args: str, env: dict[str, str] | None = None) -> str:
    return harness.manage(*args, env=env or bench_env())


# --- The server --------------------------------------------------------------------


def procfile_web_command(app: str, port: int) -> list[str]:
    """The Procfile's `web` command with `app` and a loopback host and port."""
    argv = harness.procfile_argv("web", {"PORT": str(port), "FORWARDED_ALLOW_IPS": "127.0.0.1"})
    if argv[1:3] != ["-m", "uvicorn"]:
        raise NotAvailable(f"the Procfile's web command is not uvicorn: {shlex.join(argv)}")
    argv[3] = app
    host = argv.index("--host")
    argv[host + 1] = "127.0.0.1"
    return argv


class Server:
    """One uvicorn process serving `app` with the Procfile's flags."""

    def __init__(
        self, app: str, env: dict[str, str], name: str, ready_path: str | None = "/healthz"
    ) -> None:
        self.app = app
        self.ready_path = ready_path
        self.env = env
        self.name = name
        self.port = free_port()
        self.argv = procfile_web_command(app, self.port)
        self.process = harness.Process(
            name,
            self.argv,
            env=env,
            log_dir=VAR_DIR,
            ready=lambda: harness.port_answers(self.port, self.ready_path),
            stop_signal=signal.SIGINT,  # uvicorn's graceful shutdown
        )
        self.log_path = self.process.log_path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, timeout: float = 30.0) -> Server:
        self.process.start(timeout=timeout)
        return self

    def stop(self) -> None:
        self.process.stop(timeout=25)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Seed:
    access_token: str
    dossier_id: str


class Context:
    """Shared by the benchmarks of one run: the bench database and the API server."""

    def __init__(self, *, quick: bool = False, name: str = "api", **env: str) -> None:
        self.quick = quick
        self.name = name
        self.env = bench_env(**env)
        self._server: Server | None = None
        self._seed: Seed | None = None
        self.commands: list[str] = []
        self._on_close: list[Callable[[], None]] = []
        # Set by bench.run --profile: rows whose work is not the API server's (a
        # worker, a server of their own) profile it themselves when they miss.
        self.profiling = False

    def on_close(self, stop: Callable[[], None]) -> None:
        """Run `stop` when the run ends (a benchmark's own servers, kept for its profile)."""
        self._on_close.append(stop)

    def database(self) -> None:
        recreate_database(self.env["DATABASE_URL"])
        flush_redis(self.env["REDIS_URL"])
        manage("migrate", "--noinput", env=self.env)

    def prepared(self) -> Seed:
        """The bench database, migrated and seeded on first use."""
        if self._seed is None:
            self.database()
            self._seed = seed(self.env)
        return self._seed

    @property
    def api_server(self) -> Server:
        """The project's API (plus the hello endpoint), started on first use."""
        if self._server is None:
            self.prepared()
            self._server = Server("bench.asgi:application", self.env, self.name).start()
            self.commands.append(shlex.join(self._server.argv))
        return self._server

    @property
    def seeded(self) -> Seed:
        self.api_server  # noqa: B018 - seeds on first use
        assert self._seed is not None  # noqa: S101
        return self._seed

    def close(self) -> None:
        while self._on_close:
            self._on_close.pop()()
        if self._server is not None:
            self._server.stop()
            self._server = None


def run_seed(env: dict[str, str], *args: str) -> dict[str, Any]:
    """`python -m bench.seed *args` with `env`; the JSON line it prints."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [PYTHON, "-m", "bench.seed", *args],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding the bench database failed:\n{done.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def seed(env: dict[str, str]) -> Seed:
    data = run_seed(env)
    return Seed(access_token=data["access_token"], dossier_id=data["dossier_id"])


def seed_users(env: dict[str, str], count: int) -> list[str]:
    """`count` more citizens with one session each (bench/seed.py); their access tokens."""
    tokens: list[str] = run_seed(env, "--users", str(count))["access_tokens"]
    return tokens
