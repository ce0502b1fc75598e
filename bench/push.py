"""What the push benchmarks share: the fake FCM server, the worker and an audience.

- `FakeFcm`: `python -m fakes.fcm` (the FCM v1 wire format, its OAuth2
  token endpoint) as a subprocess on a free loopback port (fakes/harness.py's
  `FakeProcess`); its request log is read over HTTP (`/_fake/stats`, `/_fake/log`).
- `Worker`: the Procfile's `worker` command with the bench environment, pointed at
  the fake by `fakes.fcm.backend_env` (the real firebase-admin code,
  only its URLs changed), as the end-to-end tests do.
- `seed_audience`: `python -m bench.seed push --no-accept` (members and devices in
  bulk, the organisation's submitted dossier); `accept`: `python -m bench.seed
  accept` (the agency accepts it with the real action, which defers the fan-out
  job in the event's transaction; prints when the COMMIT returned).
- `run_worker`: the worker started and listening first, then the event committed,
  then every delivery final; established connections to the fake and the worker's
  threads sampled meanwhile (`ConnectionSampler`); optionally a worker crash
  (SIGKILL, recovery as the periodic jobs do, a new worker) or a py-spy profile.
- `ceiling`: the fake server's own throughput, measured with a plain load
  generator (wrk, or httpx without it) posting a message the worker sent.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.harness import VAR_DIR, Context, manage, run_seed
from bench.loadgen import Load, run_load
from fakes.fcm import backend_env
from fakes.harness import FakeProcess, Process, procfile_argv

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# Settings of the worker for these runs. Quiet hours off: a non-urgent push is
# then sent now, whatever the hour of the run.
PUSH_ENV = {
    "NOTIFICATIONS_QUIET_START": "00:00",
    "NOTIFICATIONS_QUIET_END": "00:00",
    "LOG_LEVEL": "ERROR",
}


def push_settings(ctx: Context) -> dict[str, int]:
    """The worker's sending settings, read from the settings module itself."""
    names = ("FCM_CONCURRENCY", "FCM_BATCH_SIZE", "PUSH_MAX_ATTEMPTS", "WORKER_CONCURRENCY")
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    return dict(json.loads(manage("shell", "-c", code, env=ctx.env).strip().splitlines()[-1]))


def worker_command(env: dict[str, str]) -> list[str]:
    """The Procfile's `worker` command, its ${VAR:-default} filled from `env`."""
    return procfile_argv("worker", env)


def worker_concurrency(argv: list[str], settings: dict[str, int]) -> int:
    """Jobs the worker runs at once: its --concurrency, else WORKER_CONCURRENCY."""
    if "--concurrency" in argv:
        return int(argv[argv.index("--concurrency") + 1])
    return settings["WORKER_CONCURRENCY"]


class FakeFcm:
    """The fake FCM v1 server as a process of its own (as a real FCM would be)."""

    def __init__(self, name: str, *, faults: float = 0.0, seed: int = 0) -> None:
        self.name = name
        self.credentials = VAR_DIR / f"{name}-service-account.json"
        self.fake = FakeProcess(
            "fakes.fcm",
            *("--project", "citizen-bench", "--credentials", str(self.credentials)),
            *("--faults", str(faults), "--seed", str(seed), "--quiet"),
            name=name,
            log_dir=VAR_DIR,
        )
        self.log_path = self.fake.process.log_path

    @property
    def argv(self) -> list[str]:
        return self.fake.argv

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        return self.fake.process.pid if self.fake.process is not None else 0

    def lose_answers(self, count: int) -> None:
        """The next `count` sends are accepted, then their answer is never sent (the
        client times out: FCM took the message, the worker does not know)."""
        self.fake.set_faults([{"kind": "lose_answer", "path_contains": "messages:send"}] * count)

    def backend_env(self) -> dict[str, str]:
        return backend_env(self.base_url, self.credentials)

    def start(self, env: dict[str, str], timeout: float = 30.0) -> FakeFcm:
        self.fake.process.env = dict(env)
        self.fake.start(timeout=timeout)
        return self

    def stats(self) -> dict[str, Any]:
        return self.fake.stats()

    def attempts(self) -> list[dict[str, Any]]:
        return list(self.fake.log()["attempts"])

    def reset(self) -> None:
        self.fake.reset()

    def access_token(self) -> str:
        """An OAuth2 access token from the fake, obtained as google-auth does (JWT grant)."""
        from google.auth import crypt, jwt

        info = json.loads(self.credentials.read_text())
        now = int(time.time())
        claims = {
            "iss": info["client_email"],
            "scope": FCM_SCOPE,
            "aud": info["token_uri"],
            "iat": now,
            "exp": now + 3600,
        }
        assertion = jwt.encode(crypt.RSASigner.from_service_account_info(info), claims)
        answer = httpx.post(
            info["token_uri"],
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion.decode(),
            },
            timeout=10,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def stop(self) -> None:
        self.fake.stop()


class Worker:
    """The Procfile's `worker` command, as a process."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.env = env
        self.argv = worker_command(env)
        # SIGTERM: procrastinate finishes its running jobs first.
        self.process = Process(name, self.argv, env=env, log_dir=VAR_DIR)
        self.log_path = self.process.log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> Worker:
        self.process.spawn()
        return self

    def check(self) -> None:
        self.process.check()

    def stop(self) -> None:
        self.process.stop(timeout=30)


@dataclass
class Audience:
    dossier_id: str
    event_id: int | None
    users: int
    devices: int


def seed_audience(ctx: Context, devices: int, label: str) -> Audience:
    """Members owning `devices` devices and their organisation's submitted dossier (the
    agency accepts it later, with `accept`, once the worker is ready)."""
    ctx.prepared()
    data = run_seed(ctx.env, "push", "--devices", str(devices), "--label", label, "--no-accept")
    return Audience(**data)


def accept(ctx: Context, audience: Audience) -> float:
    """The agency accepts the dossier (real action, in a helper process); the event's
    fan-out job is deferred in its transaction. Returns the epoch time of the COMMIT."""
    data = run_seed(ctx.env, "accept", "--dossier", audience.dossier_id)
    audience.event_id = int(data["event_id"])
    return float(data["committed_at"])


def delivery_states(
    ctx: Context, event_id: int | None, conn: psycopg.Connection[Any] | None = None
) -> dict[str, int]:
    """States of the deliveries of one event's notifications, in the bench database."""
    query = (
        "SELECT d.state, count(*) FROM notifications_delivery d "
        "JOIN notifications_notification n ON n.id = d.notification_id "
        "WHERE n.event_id = %s GROUP BY d.state"
    )
    if conn is not None:
        return dict(conn.execute(query, (event_id,)).fetchall())
    with psycopg.connect(ctx.env["DATABASE_URL"], autocommit=True) as own:
        return dict(own.execute(query, (event_id,)).fetchall())


FINAL_STATES = ("delivered", "permanent-failure")


def wait_drained(ctx: Context, workers: list[Worker], audience: Audience, timeout: float) -> float:
    """Until every delivery of the event is final; returns the epoch time it was seen."""
    started = time.monotonic()
    # One connection for every poll: a new one each time (a backend forked and
    # authenticated 20 times a second) took CPU from the path being measured.
    with psycopg.connect(ctx.env["DATABASE_URL"], autocommit=True) as conn:
        while True:
            workers[-1].check()
            states = delivery_states(ctx, audience.event_id, conn)
            if sum(states.get(state, 0) for state in FINAL_STATES) >= audience.devices:
                return time.time()
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"not drained after {timeout:.0f}s: {states}")
            time.sleep(0.05)


SEND_JOBS_LEFT = (
    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'notifications.send_pushes' "
    "AND status IN ('todo', 'doing') AND NOT (id = ANY(%s))"
)
RUNNING_SEND_JOBS = (
    "SELECT id FROM procrastinate_jobs WHERE task_name = 'notifications.send_pushes' "
    "AND status = 'doing'"
)


def wait_queue_idle(
    ctx: Context, worker: Worker, timeout: float, dead_jobs: list[int] | None = None
) -> None:
    """Until no send job is queued or running (e.g. a retry that would send twice).
    `dead_jobs`: jobs a killed worker left `doing`; production's recover_pushes job
    retries them once their heartbeat is PUSH_STALLED_JOB_SECONDS old, and they find
    their rows closed or requeued: not waited for."""
    query = SEND_JOBS_LEFT
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check()
        with psycopg.connect(ctx.env["DATABASE_URL"], autocommit=True) as conn:
            row = conn.execute(query, (dead_jobs or [],)).fetchone()
        if row is not None and row[0] == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"send jobs still queued after {timeout:.0f}s")


def _listeners(ctx: Context) -> int:
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND query ILIKE 'LISTEN %%'"
    )
    with psycopg.connect(ctx.env["DATABASE_URL"], autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def wait_worker_ready(ctx: Context, worker: Worker, before: int, timeout: float = 90) -> None:
    """Until the worker listens for new jobs (its LISTEN connection is open), so the
    clock of a fan-out starts at the event's commit, not at the worker's start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check()
        if _listeners(ctx) > before:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the worker did not listen for jobs within {timeout:.0f}s")


class ConnectionSampler:
    """Peak number of established TCP connections to `port` (the fake FCM server) seen
    from the client side (/proc/net/tcp, every 250 ms): the connections the sender
    really opens; and the peak number of threads of the process `pid` (the worker)."""

    def __init__(self, port: int, pid: int, meter: CpuMeter | None = None) -> None:
        self.port = port
        self.pid = pid
        self.meter = meter
        self.peak = 0
        self.threads_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connections", daemon=True)

    def count(self) -> int:
        established_to_port = re.compile(
            rf"^\s*\d+: [0-9A-F]+:[0-9A-F]+ [0-9A-F]+:{self.port:04X} 01 ", re.MULTILINE
        )
        total = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                text = Path(table).read_text()
            except OSError:
                continue
            total += len(established_to_port.findall(text))
        return total

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(0.01):
            self.threads_peak = max(self.threads_peak, _threads(self.pid))
            if rounds % 25 == 0:
                # Reading the table costs the kernel ~12 ms with the machine's ~1,100
                # sockets: every 10 ms it took most of a core from the processes being
                # measured. The sender's pooled connections stay open (keep-alive), so
                # every 250 ms still sees the peak.
                self.peak = max(self.peak, self.count())
            if self.meter is not None and rounds % 10 == 0:
                self.meter.sample()
            rounds += 1

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class WorkerRun:
    """What the fake FCM server received while the worker sent one event's pushes."""

    audience: Audience
    worker_argv: list[str]
    committed_at: float  # epoch seconds, COMMIT of the event's transaction
    drained_at: float  # epoch seconds, every delivery of the event seen final
    attempts: list[dict[str, Any]]
    stats: dict[str, Any]
    states: dict[str, int]
    peak_connections: int
    worker_threads_peak: int
    crash: dict[str, Any]
    profile: dict[str, Any]
    # CPU seconds from the commit to every delivery final (`CpuMeter`).
    cpu: dict[str, float]

    @property
    def sent_at(self) -> list[float]:
        return [a["at"] for a in self.attempts if a["outcome"] == "ok"]

    @property
    def drain_seconds(self) -> float:
        return self.drained_at - self.committed_at


def _threads(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/task").iterdir()))
    except OSError:
        return 0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy (not idle nor waiting on I/O)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def _postgres_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving `database` (their title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds the processes of the push path spent in a window: the worker, the
    fake FCM server, PostgreSQL's backends of the bench database (the worker's own,
    and this process's short polling ones); and the whole machine's busy CPU, with
    the cores it has, to say what share of the machine the path got."""

    def __init__(self, database: str, **pids: int) -> None:
        self.database = database
        self.pids = pids
        self.samples: list[dict[str, Any]] = []

    def snapshot(self) -> dict[str, Any]:
        """The counters now: the processes', the backends' and the machine's."""
        backends = {pid: _cpu_seconds(pid) for pid in _postgres_backends(self.database)}
        return {
            "at": time.time(),
            **{name: _cpu_seconds(pid) for name, pid in self.pids.items()},
            "backends": backends,
            "machine": _machine_busy_seconds(),
        }

    def sample(self) -> None:
        """A snapshot kept (the sampler takes one every 100 ms), so that the window can
        start at the commit, known only once the helper process that made it has
        returned."""
        self.samples.append(self.snapshot())

    def used(self, since: float) -> dict[str, float]:
        """CPU seconds from the last snapshot taken at or before `since` (epoch) to now.
        A backend first seen after it counts from zero (it was forked meanwhile)."""
        last = self.snapshot()
        before = [s for s in self.samples if s["at"] <= since] or self.samples[:1] or [last]
        first = before[-1]
        used = {name: last[name] - first[name] for name in self.pids}
        seen: dict[int, list[float]] = {}
        for sample in [first, *[s for s in self.samples if s["at"] > first["at"]], last]:
            for pid, seconds in sample["backends"].items():
                seen.setdefault(pid, [0.0 if sample is not first else seconds, seconds])[1] = (
                    seconds
                )
        used["postgres"] = sum(end - start for start, end in seen.values())
        used["machine_busy"] = last["machine"] - first["machine"]
        return {
            **{k: round(v, 3) for k, v in used.items()},
            "window": round(last["at"] - first["at"], 3),
        }


def _crash(ctx: Context, fake: FakeFcm, worker: Worker, after_accepted: int) -> dict[str, Any]:
    """SIGKILL the worker once the fake accepted `after_accepted` sends (mid-fan-out),
    then do what the periodic jobs do after a crash: rows left `sending` are closed
    (never sent again: FCM may have taken them), rows only claimed are queued again
    once their lease passed."""
    deadline = time.monotonic() + 120
    while fake.stats().get("accepted", 0) < after_accepted:
        worker.check()
        if time.monotonic() > deadline:
            raise RuntimeError("the worker never reached the crash point")
        time.sleep(0.005)
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=30)
    killed_at = time.time()
    with psycopg.connect(ctx.env["DATABASE_URL"], autocommit=True) as conn:
        dead_jobs = [row[0] for row in conn.execute(RUNNING_SEND_JOBS)]
    accepted_at_kill = fake.stats().get("accepted", 0)
    lease = float(ctx.env.get("PUSH_CLAIM_LEASE_SECONDS", CRASH_ENV["PUSH_CLAIM_LEASE_SECONDS"]))
    time.sleep(lease + 0.5)  # the dead worker's claims expire
    code = (
        "import json; from notifications import delivery; "
        "print(json.dumps({'closed_sending': delivery.fail_stale_sending(), "
        "'requeued_claimed': delivery.recover_pushes()}))"
    )
    env = {**ctx.env, **PUSH_ENV, **CRASH_ENV, "PUSH_STALE_SENDING_MINUTES": "0"}
    recovered = json.loads(manage("shell", "-c", code, env=env).strip().splitlines()[-1])
    return {
        "killed_at": killed_at,
        "accepted_at_kill": accepted_at_kill,
        "dead_jobs": dead_jobs,
        **recovered,
    }


# A short claim lease so that a crashed worker's claims can be taken over in seconds.
CRASH_ENV = {"PUSH_CLAIM_LEASE_SECONDS": "3"}


def run_worker(
    ctx: Context,
    fake: FakeFcm,
    devices: int,
    label: str,
    extra_env: dict[str, str] | None = None,
    *,
    crash_after: int | None = None,
    profile_seconds: int = 0,
) -> WorkerRun:
    """Seed an audience of `devices`, start the worker and wait until it listens, then
    commit the event (the agency accepts the dossier) and wait until every push is
    final and no send job is left; read what the fake server received.

    `crash_after`: SIGKILL the worker after that many accepted sends, recover as the
    periodic jobs do, start a new worker. `profile_seconds`: sample the worker with
    py-spy from the commit on (the profile of a missed row)."""
    env = {**ctx.env, **PUSH_ENV, **fake.backend_env(), **(extra_env or {})}
    if crash_after is not None:
        env.update(CRASH_ENV)
    audience = seed_audience(ctx, devices, label)
    before = _listeners(ctx)
    workers = [Worker(env, f"worker-{label}")]
    workers[0].start()
    crash: dict[str, Any] = {}
    found: dict[str, Any] = {}
    database = ctx.env["DATABASE_URL"].rsplit("/", 1)[1]
    meter = CpuMeter(database, worker=workers[0].pid, fake=fake.pid)
    cpu: dict[str, float] = {}
    try:
        wait_worker_ready(ctx, workers[0], before)
        with ConnectionSampler(fake.port, workers[0].pid, meter) as connections:
            sampler = None
            if profile_seconds:
                from bench.profile import start_profile

                sampler = start_profile(workers[0].pid, f"push-{label}", profile_seconds, idle=True)
            meter.sample()
            committed_at = accept(ctx, audience)
            if crash_after is not None:
                crash = _crash(ctx, fake, workers[0], crash_after)
                workers.append(Worker(env, f"worker-{label}-restarted").start())
            drained_at = wait_drained(ctx, workers, audience, timeout=120 + devices / 20)
            cpu = meter.used(since=committed_at)
            if sampler is not None:
                found = sampler()
        wait_queue_idle(ctx, workers[-1], timeout=60, dead_jobs=crash.get("dead_jobs"))
    finally:
        for worker in workers:
            if worker.process.running():
                worker.stop()
    return WorkerRun(
        audience=audience,
        worker_argv=workers[0].argv,
        committed_at=committed_at,
        drained_at=drained_at,
        attempts=fake.attempts(),
        stats=fake.stats(),
        states=delivery_states(ctx, audience.event_id),
        peak_connections=connections.peak,
        worker_threads_peak=connections.threads_peak,
        crash=crash,
        profile=found,
        cpu=cpu,
    )


def ceiling(fake: FakeFcm, message: dict[str, Any], connections: int, seconds: float) -> Load:
    """Requests/s the fake server answers to `connections` clients posting `message`."""
    load = run_load(
        f"{fake.base_url}/v1/projects/citizen-bench/messages:send",
        headers={
            "Authorization": f"Bearer {fake.access_token()}",
            "Content-Type": "application/json; charset=UTF-8",
        },
        connections=connections,
        seconds=seconds,
        method="POST",
        body=json.dumps({"message": message}, ensure_ascii=False).encode(),
    )
    if load.errors:
        raise RuntimeError(f"the ceiling run had {load.errors} errors")
    return load


def ceiling_with_cpu(
    fake: FakeFcm, message: dict[str, Any], connections: int, seconds: float
) -> tuple[Load, dict[str, float]]:
    """`ceiling`, and the CPU seconds the fake, the load generator (a child process:
    wrk) and the whole machine spent meanwhile."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    fake_before, machine_before = _cpu_seconds(fake.pid), _machine_busy_seconds()
    started = time.monotonic()
    load = ceiling(fake, message, connections, seconds)
    window = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        "fake": round(_cpu_seconds(fake.pid) - fake_before, 3),
        "load_generator": round(
            after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 3
        ),
        "machine_busy": round(_machine_busy_seconds() - machine_before, 3),
        "window": round(window, 3),
    }
    return load, cpu


def send_concurrency(settings: dict[str, int], workers: int, devices: int) -> int:
    """Sends in flight at most while the worker sends `devices` pushes of one event:
    FCM_CONCURRENCY per send job, as many jobs as run at once (one per FCM_BATCH_SIZE
    deliveries, at most the worker's concurrency)."""
    jobs = math.ceil(devices / max(1, settings["FCM_BATCH_SIZE"]))
    return settings["FCM_CONCURRENCY"] * max(1, min(workers, jobs))


def delivered_pairs(attempts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(token, notification id) of every accepted send, in the order received."""
    return [
        (a["token"], str(a["message"].get("data", {}).get("notification_id", "")))
        for a in attempts
        if a["outcome"] == "ok"
    ]
