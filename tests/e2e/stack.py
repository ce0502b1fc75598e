"""The real stack on loopback, as separate processes, for end-to-end and fault tests.

`Stack` starts, on free 127.0.0.1 ports:
- a fresh PostgreSQL database on the shared server (created, `manage.py migrate`d,
  dropped at the end), optionally behind a `TcpProxy` the test can cut;
- a throwaway `redis-server` (its own port, no persistence) the test may stop;
- the fakes at the outer boundary, as threads of the test process so the test
  can read what they received and script their answers: FCM v1, the brand-name
  SMS gateway, the VNPost carrier and the payment gateway (VNPay and the national
  platform, which calls the web process's IPN route like the real one);
- the ASGI server and the job worker, exactly the Procfile's `web` and `worker`
  commands, as subprocesses wired to all of the above through the environment:
  `webs` web processes (each on its own port, `web_urls`) and `workers` workers
  (default one of each), all on the one database and the one Redis, as several
  hosts behind a load balancer would be;
- with `s3=True`, moto's standalone S3 server as its own process and a bucket,
  used by every web and worker process (`STORAGE_BACKEND=s3`), as the object
  store several hosts share.

Processes, the throwaway Redis, databases and readiness waits come from the
harness the benchmarks share (fakes/harness.py). Every wait is bounded; `close()`
terminates then kills the processes, stops the fakes and drops the database even
when the test failed half-way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

from fakes.carrier import API_KEY as CARRIER_API_KEY
from fakes.carrier import FakeCarrier
from fakes.fcm import FakeFcmServer, backend_env
from fakes.harness import (
    Process,
    RedisServer,
    S3Server,
    child_env,
    create_database,
    drop_database,
    free_port,
    manage,
    procfile_argv,
)
from fakes.payment_gateway import FakePaymentGateway
from fakes.sms_gateway import FakeGateway

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PG_ADMIN_URL = os.environ.get("E2E_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
WEBHOOK_SECRET = "e2e-webhook-secret"
SMS_KEYS = {"api_key": "e2e-sms-key", "secret_key": "e2e-sms-secret", "brandname": "DVCONG"}
PAYMENT_KEYS = {
    "vnpay_tmn_code": "E2ETMN01",
    "vnpay_secret": "e2e-vnpay-hash-secret",
    "national_merchant_id": "E2E-DVC",
    "national_secret": "e2e-national-secret",
}


# --- TCP proxy (to cut the database off) --------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every connection and
    swallows new ones without answering (a database that stops answering)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = int(self.listener.getsockname()[1])
        self.open = threading.Event()
        self.open.set()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(client)
            if not self.open.is_set():
                continue  # held open, never answered, until cut() ends or close()
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._conns.append(upstream)
        pair = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set() and self.open.is_set():
                readable, _, _ = select.select(list(pair), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        self.open.clear()
        self._drop_all()

    def restore(self) -> None:
        self._drop_all()  # the swallowed connections never got an answer: close them
        self.open.set()

    def _drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._stop.set()
        self._drop_all()
        with contextlib.suppress(OSError):
            self.listener.close()
        self._thread.join(timeout=2)


# --- The stack -------------------------------------------------------------------------------


class Stack:
    def __init__(
        self,
        workdir: Path,
        *,
        db_proxy: bool = False,
        extra_env: dict[str, str] | None = None,
        template: str | None = None,
        webs: int = 1,
        workers: int = 1,
        s3: bool = False,
        admin_url: str = PG_ADMIN_URL,
    ) -> None:
        if webs < 1 or workers < 1:
            raise ValueError("a stack has at least one web and one worker process")
        self.template = template
        # The PostgreSQL server (any database of it): the shared one, or a cluster of
        # the caller's own (fakes.harness.PostgresServer, as the soak runs).
        self.admin_url = admin_url
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_name = f"citizen_e2e_{secrets.token_hex(4)}"
        self.db_proxy_wanted = db_proxy
        self.extra_env = extra_env or {}
        self.redis = RedisServer(workdir)
        # The fakes run as threads of the test process, so the test reads what they
        # received and scripts their answers directly.
        self.fcm = FakeFcmServer(project_id="citizen-e2e")
        self.carrier = FakeCarrier()
        self.sms = FakeGateway(**SMS_KEYS)
        self.proxy: TcpProxy | None = None
        self.s3 = S3Server(workdir) if s3 else None
        self.s3_bucket = f"e2e-{secrets.token_hex(6)}"
        self.webs: list[Process | None] = [None] * webs
        self.workers: list[Process | None] = [None] * workers
        self.web_ports = [free_port() for _ in range(webs)]
        self.web_port = self.web_ports[0]
        # Calls the web process's IPN route like the real gateway does.
        self.payments = FakePaymentGateway(
            **PAYMENT_KEYS,
            vnpay_ipn_url=f"{self.base_url}/api/v1/payments/gateways/vnpay/callback",
            retry_interval_ms=300,
        )
        self.db_created = False
        self.fakes_started = False
        self.env: dict[str, str] = {}
        self.worker_exits: list[int] = []
        self._supervisor: threading.Thread | None = None
        self._closing = threading.Event()

    # -- processes: the first web and worker keep their one-process names --
    @property
    def web(self) -> Process | None:
        return self.webs[0]

    @web.setter
    def web(self, process: Process | None) -> None:
        self.webs[0] = process

    @property
    def worker(self) -> Process | None:
        return self.workers[0]

    @worker.setter
    def worker(self, process: Process | None) -> None:
        self.workers[0] = process

    # -- addresses --
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}"

    @property
    def web_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.web_ports]

    def database_url(self, via_proxy: bool = False) -> str:
        admin = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        host, port = admin.get("host", "127.0.0.1"), int(admin.get("port") or 5432)
        if via_proxy:
            assert self.proxy is not None
            host, port = "127.0.0.1", self.proxy.port
        user = admin.get("user", "postgres")
        password = admin.get("password")
        auth = f"{user}:{password}" if password else str(user)
        return f"postgres://{auth}@{host}:{port}/{self.db_name}"

    # -- lifecycle --
    def start(self) -> Stack:
        started = time.monotonic()
        self._create_database()
        if self.db_proxy_wanted:
            admin = psycopg.conninfo.conninfo_to_dict(self.admin_url)
            self.proxy = TcpProxy((admin.get("host", "127.0.0.1"), int(admin.get("port") or 5432)))
        self.redis.start()
        if self.s3 is not None:
            self.s3.start()
            self.s3.bucket(self.s3_bucket)
        self.fcm.start()
        self.carrier.start()
        self.sms.start()
        self.payments.start()
        self.fakes_started = True
        self.env = self._environment()
        if self.template is None:
            self.manage("migrate", "--noinput", timeout=180)
            self.manage("load_demo", timeout=60)
        for index in range(len(self.webs)):
            self.start_web(index)
        for index in range(len(self.workers)):
            self.start_worker(index)
        self.startup_seconds = time.monotonic() - started
        return self

    def _environment(self) -> dict[str, str]:
        credentials = self.fcm.write_credentials(self.workdir / "fcm-service-account.json")
        env = child_env(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
                "DATABASE_URL": self.database_url(via_proxy=self.proxy is not None),
                "DATABASE_CONNECT_TIMEOUT": "2",
                "REDIS_URL": self.redis.url,
                "REDIS_SOCKET_TIMEOUT": "1",
                "JOBS_INLINE": "0",
                "DEBUG": "0",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "OUTBOX_DIR": str(self.workdir / "outbox"),
                "MEDIA_ROOT": str(self.workdir / "media"),
                "LOG_LEVEL": "WARNING",
                "SMS_BACKEND": "http",
                "SMS_HTTP_URL": self.sms.url,
                "SMS_API_KEY": SMS_KEYS["api_key"],
                "SMS_SECRET_KEY": SMS_KEYS["secret_key"],
                "SMS_BRANDNAME": SMS_KEYS["brandname"],
                "SMS_HTTP_TIMEOUT_SECONDS": "5",
                **backend_env(self.fcm.base_url, credentials),
                "FCM_TIMEOUT_SECONDS": "10",
                "NOTIFICATIONS_QUIET_START": "00:00",
                "NOTIFICATIONS_QUIET_END": "00:00",
                "POSTAL_VNPOST_BASE_URL": self.carrier.url,
                "POSTAL_VNPOST_API_KEY": CARRIER_API_KEY,
                "POSTAL_VNPOST_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "POSTAL_VNPOST_TIMEOUT_SECONDS": "5",
                "PAYMENT_VNPAY_TMN_CODE": PAYMENT_KEYS["vnpay_tmn_code"],
                "PAYMENT_VNPAY_HASH_SECRET": PAYMENT_KEYS["vnpay_secret"],
                "PAYMENT_NATIONAL_MERCHANT_ID": PAYMENT_KEYS["national_merchant_id"],
                "PAYMENT_NATIONAL_SECRET": PAYMENT_KEYS["national_secret"],
                "PAYMENT_FAKE_GATEWAY_URL": self.payments.url,
                "PAYMENT_GATEWAY_TIMEOUT_SECONDS": "5",
                "WORKER_CONCURRENCY": "4",
                "FORWARDED_ALLOW_IPS": "127.0.0.1",
            }
        )
        if self.s3 is not None:
            env.update(self.s3.env(self.s3_bucket))
        env.update(self.extra_env)
        return env

    def manage(self, *args: str, timeout: float = 60, input: str | None = None) -> str:
        return manage(*args, env=self.env, timeout=timeout, input=input)

    def python(self, code: str, timeout: float = 60) -> str:
        """Run Django code against the stack's database (as an operator would)."""
        return self.manage("shell", "-c", code, timeout=timeout)

    def _process(self, name: str, extra: dict[str, str] | None = None, index: int = 0) -> Process:
        """The Procfile's `name` command with the stack's environment (log appended;
        the second and later processes of a kind log to `<name>-<index>.log`)."""
        env = {**self.env, **(extra or {})}
        label = name if index == 0 else f"{name}-{index}"
        return Process(
            label, procfile_argv(name, env), env=env, log_dir=self.workdir, append_log=True
        )

    def start_web(self, index: int = 0) -> None:
        port = self.web_ports[index]
        web = self._process("web", {"PORT": str(port)}, index)
        url = f"http://127.0.0.1:{port}/readyz"
        web.ready = lambda: httpx.get(url, timeout=2).status_code == 200
        self.webs[index] = web
        web.start(timeout=60)

    def start_worker(self, index: int = 0) -> None:
        before = self._heartbeats() if index else 0
        worker = self._process("worker", index=index)
        worker.ready = lambda: self._heartbeats() > before
        self.workers[index] = worker
        worker.start(timeout=60)

    def kill_web(self, index: int) -> None:
        """SIGKILL one web process (a host that dies); the others keep serving."""
        web = self.webs[index]
        assert web is not None
        web.send_signal(signal.SIGKILL)
        web.wait(timeout=10)

    def kill_worker_at(self, index: int) -> None:
        """SIGKILL one worker of several, unsupervised: it stays down."""
        worker = self.workers[index]
        assert worker is not None
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    def supervise_worker(self, restart_delay: float = 1.0) -> None:
        """Restart the worker whenever it exits with a failure status, as a supervisor
        set to restart on failure does (systemd `Restart=on-failure`); a worker that
        exits with status 0 stays down. Exit statuses are kept in `worker_exits`."""
        self._supervisor = threading.Thread(
            target=self._supervise, args=(restart_delay,), daemon=True
        )
        self._supervisor.start()

    def _supervise(self, restart_delay: float) -> None:
        while not self._closing.wait(0.1):
            worker = self.worker
            if worker is None or (status := worker.exit_status()) is None:
                continue
            self.worker_exits.append(status)
            if status == 0 or self._closing.wait(restart_delay):
                return
            self.worker = self._process("worker").spawn()

    def worker_running(self) -> bool:
        """The current worker process is up and beating (after a restart too)."""
        return self.worker is not None and self.worker.running() and self._heartbeat()

    def _heartbeat(self) -> bool:
        return bool(self._heartbeats())

    def _heartbeats(self) -> int:
        """Workers that beat in the last 10 seconds."""
        rows = self.sql(
            "SELECT count(*) FROM procrastinate_workers "
            "WHERE last_heartbeat > now() - interval '10 seconds'"
        )
        return int(rows[0][0])

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        if self._supervisor is None:
            self.worker.wait(timeout=10)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read or change the stack's database directly (checks; never app logic)."""
        with psycopg.connect(self.database_url(), connect_timeout=5, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return list(cursor.fetchall()) if cursor.description else []

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _create_database(self) -> None:
        create_database(self.admin_url, self.db_name, template=self.template)
        self.db_created = True

    def close(self) -> None:
        self._closing.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        for process in (*self.webs, *self.workers):
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop(timeout=10)
        with contextlib.suppress(Exception):
            self.redis.stop()
        if self.s3 is not None:
            with contextlib.suppress(Exception):
                self.s3.stop()
        if self.proxy is not None:
            with contextlib.suppress(Exception):
                self.proxy.close()
        # Only fakes that were started: a socketserver never started hangs in shutdown()
        # (the template's stack starts none).
        for fake in (self.fcm, self.carrier, self.sms, self.payments) if self.fakes_started else ():
            with contextlib.suppress(Exception):
                fake.stop()
        if self.db_created:
            with contextlib.suppress(Exception):
                drop_database(self.admin_url, self.db_name)

    def dump_logs(self) -> str:
        names = [f"web-{i}" if i else "web" for i in range(len(self.webs))]
        names += [f"worker-{i}" if i else "worker" for i in range(len(self.workers))]
        return "\n".join(
            f"--- {name}.log ---\n{self.log_tail(name)}" for name in (*names, "redis", "s3")
        )


@contextlib.contextmanager
def migrated_template(workdir: Path) -> Iterator[str]:
    """A database migrated with `manage.py migrate` and loaded with the demo catalogue,
    copied (CREATE DATABASE ... TEMPLATE) by each stack of the session; dropped after."""
    name = f"citizen_e2e_tpl_{secrets.token_hex(4)}"
    stack = Stack(workdir)
    stack.db_name = name
    try:
        stack._create_database()
        stack.env = child_env(
            {
                "DATABASE_URL": stack.database_url(),
                "JOBS_INLINE": "0",
                "REDIS_URL": "",
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        stack.manage("migrate", "--noinput", timeout=180)
        stack.manage("load_demo", timeout=60)
        yield name
    finally:
        stack.close()


@contextlib.contextmanager
def running_stack(workdir: Path, **kwargs: Any) -> Iterator[Stack]:
    stack = Stack(workdir, **kwargs)
    try:
        stack.start()
        yield stack
    except BaseException:
        sys.stderr.write(stack.dump_logs())
        raise
    finally:
        stack.close()
