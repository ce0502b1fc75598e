"""Processes on loopback, shared by the end-to-end tests and the benchmarks.

- `Process`: one subprocess with its log file, started and then waited on until a
  readiness condition holds (failing at once if it exits), stopped with a signal
  then killed after a bounded wait;
- `wait_until`: every wait here is a condition polled with a deadline, never a sleep;
- `RedisServer`: a throwaway `redis-server` (own port, no persistence);
- `PostgresServer`: a throwaway PostgreSQL cluster (own data directory and port),
  for a run whose timings must not share a server with other suites' load;
- `S3Server`: moto's standalone S3 server as its own process (own port, in memory);
- `FakeProcess`: a fake of this package as its own process (`python -m fakes.<name>
  --port 0 --port-file ...`), ready once it wrote its port and answers
  `/_fake/ready`, its controls read and set over HTTP;
- databases: `create_database` (fresh or a copy of a template), `drop_database`,
  `recreate_database`, `database_url` on the shared PostgreSQL server;
- `procfile_command` / `procfile_argv`: the Procfile's commands, so tests and
  benchmarks run what production runs; `manage`: `manage.py` with an environment;
- `child_env`: this process's environment without what belongs to the test
  runner (pytest, Django settings, the test database name).

Apps never import this (nor anything under `fakes/`); tests and `bench/` do.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess  # nosec B404 # starts our own interpreter and tools
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
T = TypeVar("T")


# Every port `free_port` handed out in this process: a port is chosen, then bound
# later by the server it was chosen for, and meanwhile the kernel may offer the same
# number again (its probe socket is closed). Two servers of one stack were given one
# port that way: the web process found its port held by the stack's Redis, itself
# moved to a fresh port after its first choice was taken.
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A loopback port nothing listens on now and this process never handed out."""
    with _handed_out_lock:
        for _ in range(1000):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free port left that this process has not handed out")


def wait_until(
    condition: Callable[[], T | None], *, timeout: float, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `condition` until it returns something truthy (returned); bounded in time.
    An exception from `condition` counts as "not yet" (a service still starting)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as exc:  # a not-yet-ready service raises; keep polling
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment minus the test runner's own variables, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST", "TEST_DATABASE"))
    }
    env.update(extra or {})
    return env


# --- processes ----------------------------------------------------------------------


class ProcessExited(RuntimeError):
    """A process ended while it was expected to come up."""


class Process:
    """One subprocess, its output in `log_dir/<name>.log`.

    `ready` is polled after the start until it returns true (an exception counts as
    not yet); the start fails as soon as the process exits. `stop_signal` is what
    `stop()` sends first (SIGTERM; SIGINT for a server that drains on it)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log_dir: Path,
        cwd: Path = ROOT,
        ready: Callable[[], object] | None = None,
        stop_signal: int = signal.SIGTERM,
        append_log: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.cwd = cwd
        self.ready = ready
        self.stop_signal = stop_signal
        self.append_log = append_log
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise ProcessExited(f"{self.name} was never started")
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exit_status(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def spawn(self) -> Process:
        """Start without waiting for readiness."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab" if self.append_log else "wb") as log:
            self.popen = subprocess.Popen(  # noqa: S603  # nosec B603 # our interpreter and commands
                self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def start(self, timeout: float = 30.0, interval: float = 0.1) -> Process:
        """Start and wait until `ready` holds; fails at once if the process exits,
        and stops it if it is not ready in `timeout` seconds."""
        self.spawn()
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.check()
            try:
                if self.ready is None or self.ready():
                    return self
            except Exception as exc:  # not answering yet
                last_error = exc
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"{self.name} not ready in {timeout}s (last error: {last_error}); "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(interval)

    def check(self) -> None:
        """Raise if the process has exited."""
        if self.popen is not None and self.popen.poll() is not None:
            raise ProcessExited(
                f"{self.name} exited ({self.popen.returncode}); see {self.log_path}:\n"
                f"{self.log_tail()}"
            )

    def send_signal(self, signum: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the process to end (subprocess.TimeoutExpired after `timeout`)."""
        if self.popen is None:
            raise ProcessExited(f"{self.name} was never started")
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout: float = 25.0) -> int | None:
        """`stop_signal`, then SIGKILL after `timeout`; the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """A GET of `url` answers 200 (a readiness condition)."""
    return httpx.get(url, timeout=timeout).status_code == 200


def port_answers(port: int, path: str | None = None) -> bool:
    """Something listens on 127.0.0.1:`port` (and answers `path` with 200, HTTP/1.0)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            if path is None:
                return True
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return sock.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# --- Redis ----------------------------------------------------------------------------


class _ChosenPort:
    """A server on a port `free_port()` chose: another process may bind that port
    between the choice and the server's own bind (a busy machine, ephemeral ports of
    clients). The first start then fails at once (the server exits: address in use)
    and is tried again on a fresh port, twice. A restart keeps the port: its clients
    know it."""

    port: int
    started_once: bool = False

    def _start_on_chosen_port(self, launch: Callable[[], None]) -> None:
        attempts = 1 if self.started_once else 3
        for attempt in range(attempts):
            try:
                launch()
            except ProcessExited:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()
                continue
            self.started_once = True
            return


class RedisServer(_ChosenPort):
    """A throwaway redis-server on its own port (no disk), stoppable and restartable."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self._start_on_chosen_port(lambda: self._launch(timeout))
        return self

    def _launch(self, timeout: float) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = Process(
            "redis",
            argv,
            env=os.environ,
            log_dir=self.workdir,
            cwd=self.workdir,
            ready=self._pong,
            append_log=True,
        )
        self.process.start(timeout=timeout, interval=0.05)

    def _pong(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None


def flush_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


# --- PostgreSQL as a process of its own ---------------------------------------------------


def postgres_binary(name: str) -> str:
    """A PostgreSQL server program (`initdb`, `postgres`): on PATH, else Debian's
    /usr/lib/postgresql/<version>/bin (the newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: p.parts)
    if not candidates:
        raise RuntimeError(f"{name} is not installed (apt-get install postgresql)")
    return str(candidates[-1])


class PostgresServer(_ChosenPort):
    """A throwaway PostgreSQL cluster: `initdb` into `datadir` (or a copy of a cluster
    made before, `seed`), served on its own port, durability off (a test's data).

    A run that measures live delivery, or soaks the stack for minutes, uses a cluster
    of its own: other suites' load on the shared server would skew its timings. As
    root, the server runs as the `postgres` user (PostgreSQL refuses root)."""

    def __init__(self, datadir: Path, *, log_dir: Path) -> None:
        self.port = free_port()
        self.datadir = datadir
        self.log_dir = log_dir
        self.process: Process | None = None

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]

    def init(self, seed: Path | None = None) -> PostgresServer:
        """Create the cluster: a copy of `seed` (a stopped cluster's directory) or initdb."""
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        if seed is not None:
            shutil.copytree(seed, self.datadir, symlinks=True)
        else:
            self.datadir.mkdir()
            if os.geteuid() == 0:
                shutil.chown(self.datadir, "postgres", "postgres")
            argv = [postgres_binary("initdb"), "-D", str(self.datadir), "-U", "postgres"]
            argv += ["--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]
            subprocess.run(  # noqa: S603  # nosec B603 # PostgreSQL's own initdb
                self._as_owner(argv), check=True, capture_output=True, timeout=120
            )
        if os.geteuid() == 0:
            for path in [self.datadir, *self.datadir.rglob("*")]:
                shutil.chown(path, "postgres", "postgres")
        self.datadir.chmod(0o700)
        return self

    def start(self, timeout: float = 60.0) -> PostgresServer:
        self._start_on_chosen_port(lambda: self._launch(timeout))
        return self

    def _launch(self, timeout: float) -> None:
        argv = [postgres_binary("postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        argv += ["-k", str(self.datadir), "-c", "listen_addresses=127.0.0.1"]
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        argv += ["-c", "max_connections=300"]
        self.process = Process(
            "postgres",
            self._as_owner(argv),
            env=child_env(),
            log_dir=self.log_dir,
            cwd=self.log_dir,
            ready=lambda: _accepts(self.admin_url),
            stop_signal=signal.SIGINT,  # fast shutdown: ends the sessions, then stops
            append_log=True,
        )
        self.process.start(timeout=timeout, interval=0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)
            self.process = None


def _accepts(url: str) -> bool:
    import psycopg

    with psycopg.connect(url, connect_timeout=2) as conn:
        conn.execute("SELECT 1")
    return True


# --- S3 ----------------------------------------------------------------------------------

# Credentials of the loopback S3 server (moto) the tests start; it accepts any.
S3_KEYS = {"access_key": "harness-access-key", "secret_key": "harness-secret-key"}  # nosec B105
S3_REGION = "ap-southeast-1"


class S3Server(_ChosenPort):
    """A real S3-speaking server process on loopback: moto's standalone server
    (`python -m moto.server`), never an in-process mock. `bucket()` creates a fresh
    bucket; `env(bucket)` is what a web or worker process needs to use it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> S3Server:
        self._start_on_chosen_port(lambda: self._launch(timeout))
        return self

    def _launch(self, timeout: float) -> None:
        argv = [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = Process(
            "s3",
            argv,
            env=child_env(),
            log_dir=self.workdir,
            cwd=self.workdir,
            ready=lambda: port_answers(self.port, "/moto-api/data.json"),
            append_log=True,
        )
        self.process.start(timeout=timeout, interval=0.1)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=S3_REGION,
            aws_access_key_id=S3_KEYS["access_key"],
            aws_secret_access_key=S3_KEYS["secret_key"],
        )

    def bucket(self, name: str) -> str:
        self.client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": S3_REGION}
        )
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object name in `bucket` (what the store really holds)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def options(self, bucket: str) -> dict[str, Any]:
        """The STORAGES["default"]["OPTIONS"] the settings build from `env(bucket)`."""
        return {
            "bucket_name": bucket,
            "endpoint_url": self.url,
            "region_name": S3_REGION,
            "access_key": S3_KEYS["access_key"],
            "secret_key": S3_KEYS["secret_key"],
            "addressing_style": "path",
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
        }

    def env(self, bucket: str) -> dict[str, str]:
        return {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": self.url,
            "S3_REGION": S3_REGION,
            "S3_ACCESS_KEY_ID": S3_KEYS["access_key"],
            "S3_SECRET_ACCESS_KEY": S3_KEYS["secret_key"],
            "S3_ADDRESSING_STYLE": "path",
        }

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None


# --- PostgreSQL -------------------------------------------------------------------------


def database_url(server_url: str, name: str) -> str:
    """`server_url` (any database on the server) pointed at database `name`."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"refusing database name {name!r}")
    return name


def _admin(server_url: str) -> Any:
    import psycopg

    return psycopg.connect(database_url(server_url, "postgres"), autocommit=True, connect_timeout=5)


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create database `name` (a copy of `template` when given); its URL."""
    copy = f' TEMPLATE "{_check_name(template)}"' if template else ""
    with _admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{_check_name(name)}"{copy}')
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')


def recreate_database(url: str) -> None:
    """Drop and create the database of `url`."""
    name = urlsplit(url).path.lstrip("/")
    drop_database(url, name)
    create_database(url, name)


# --- the project's commands ------------------------------------------------------------------


def procfile_command(name: str, procfile: Path = ROOT / "Procfile") -> str:
    for line in procfile.read_text(encoding="utf-8").splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise KeyError(name)


def procfile_argv(name: str, values: Mapping[str, str]) -> list[str]:
    """The Procfile's `name` command as an argv, its ${VAR:-default} filled from `values`;
    `python` and the Python tools run by this interpreter."""
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: values.get(m[1], m[2]), procfile_command(name))
    argv = shlex.split(line)
    if argv[0] == "python":
        argv[0] = PYTHON
    elif argv[0] in {"uvicorn", "procrastinate"}:
        argv = [PYTHON, "-m", *argv]
    return argv


def manage(
    *args: str,
    env: Mapping[str, str],
    timeout: float = 600,
    input: str | None = None,
) -> str:
    """`manage.py *args` with `env`; its standard output (RuntimeError when it fails)."""
    done = subprocess.run(  # noqa: S603  # nosec B603 # our own interpreter and manage.py
        [PYTHON, str(ROOT / "manage.py"), *args],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


# --- fakes as processes ---------------------------------------------------------------------


class FakeProcess:
    """`python -m fakes.<module>` on a free port; its controls over HTTP."""

    def __init__(
        self,
        module: str,
        *args: str,
        name: str | None = None,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.module = module
        self.name = name or module.rpartition(".")[2]
        self.port_file = log_dir / f"{self.name}.port"
        argv = [PYTHON, "-m", module, "--port", "0", "--port-file", str(self.port_file)]
        self.process = Process(
            self.name,
            [*argv, *args],
            env=env if env is not None else child_env(),
            log_dir=log_dir,
            ready=self._ready,
        )
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def argv(self) -> list[str]:
        return self.process.argv

    def _ready(self) -> bool:
        if not self.port_file.exists():
            return False
        self.port = int(self.port_file.read_text().strip())
        return http_ok(f"{self.base_url}/_fake/ready")

    def start(self, timeout: float = 30.0) -> FakeProcess:
        with contextlib.suppress(FileNotFoundError):
            self.port_file.unlink()
        self.process.start(timeout=timeout)
        return self

    def stop(self) -> None:
        self.process.stop(timeout=10)

    def stats(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.base_url}/_fake/stats", timeout=10)
        answer.raise_for_status()
        return dict(answer.json())

    def log(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.base_url}/_fake/log", timeout=60)
        answer.raise_for_status()
        return dict(answer.json())

    def reset(self) -> None:
        httpx.post(f"{self.base_url}/_fake/reset", timeout=10).raise_for_status()

    def set_faults(
        self,
        next: list[dict[str, Any]] | None = None,
        *,
        mode: dict[str, Any] | None = None,
        clear_mode: bool = False,
        delay: float | None = None,
    ) -> int:
        """Queue faults, set or clear the persistent mode, set the delay; pending count."""
        body: dict[str, Any] = {"next": next or []}
        if mode is not None or clear_mode:
            body["mode"] = mode
        if delay is not None:
            body["delay"] = delay
        answer = httpx.post(f"{self.base_url}/_fake/faults", json=body, timeout=10)
        answer.raise_for_status()
        return int(answer.json()["pending"])

    def __enter__(self) -> FakeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
