"""`make soak`: the multi-process stack under a mixed load and six faults, then a
reconciliation of every dossier's events, socket frames, pushes and inbox items.

Not part of `make test`. Bounded in time: SOAK_SECONDS (default 600) is the whole
run, setup, load, drain and reconciliation included (teardown adds a few seconds);
the load phase never goes under 120 s (six faults with their recoveries), so a
short SOAK_SECONDS is overrun rather than a fault skipped. Every wait is a
condition with a deadline.

The stack (tests/e2e/stack.py): 2 web and 2 worker processes (the Procfile's
commands) on one PostgreSQL database of a cluster of the soak's own (see
`soak_postgres`), reached through a TcpProxy the soak can cut,
one throwaway Redis it can stop, moto's S3 server, and the FCM, SMS, carrier and
payment fakes. A supervisor restarts a worker that exits (as systemd would).

The load (SOAK_CITIZENS=30 citizens, SOAK_RATE=30 dossiers a minute in all, that
is one per citizen per minute): each citizen signs up, registers one push device,
turns quiet hours off and opens one socket (on the other web process than their
REST calls) before filing anything. Dossiers (marriage registration at UBND
Hoàn Kiếm: no fee, no mandatory paper) are drafted and submitted, then the
agency's system moves each through accept, start-processing, complete and
hand-over with signed requests, a few seconds apart (4 pushes, 5 events, 5 inbox
items a dossier). Sockets drop on their own (about every 90 s each) and resume
with the last event id seen. Every client retries transport errors and 5xx
answers with the same Idempotency-Key / X-Event-Id, and fails over to the other
web process when its own refuses connections (a load balancer's job).

The faults, one at a time, spread over the load phase, each once the stack has
recovered from the previous one (durations scaled by SOAK_SECONDS / 600 when
shorter): worker SIGKILL (restarted), Redis down 20 s, PostgreSQL cut off 15 s, FCM
answering 503/429 for 30 s (and until it refused one), web SIGKILL (restarted), then
one web process of two killed for good, its clients resuming on the other.

Then the drain: filings stop, the agency finishes its dossiers, and the soak waits
(bounded) until every job is done and every delivery final, then until every
socket caught up. Then tests/soak/reconcile.py counts losses and duplicates;
the table is printed, the figures written to SOAK_OUT (var/soak/results.json),
and the exit status is 1 on any loss, duplicate or leak.

    make soak                      # 10 minutes
    make soak SOAK_SECONDS=240     # a quick run (3-5 minutes), every fault still injected
    SOAK_FAULTS=none make soak     # the load alone, to debug (SOAK_FAULTS=1,3: a subset)
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import heapq
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import django
import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

# The clients sign with the project's own code (django-ninja needs settings loaded).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # not every request of the clients
django.setup()

from dossiers.agency.signing import sign as sign_agency  # noqa: E402
from fakes.harness import (  # noqa: E402
    PostgresServer,
    child_env,
    create_database,
    manage,
    wait_until,
)
from tests.e2e.clients import register_device, sign_up  # noqa: E402
from tests.e2e.stack import ROOT, VENV_BIN, Stack  # noqa: E402
from tests.soak.reconcile import (  # noqa: E402
    DossierRecord,
    Event,
    SocketRecord,
    lateness,
    reconcile,
    table,
)

PROCEDURE_CODE = "1.000894"  # marriage registration, UBND Hoàn Kiếm (demo): no fee
AGENCY_CODE = "HN-HOANKIEM"
FORM = {
    "applicant_name": "Trần Văn Minh",
    "applicant_citizen_id": "001090012345",
    "applicant_phone": "0987650001",
    "partner_name": "Nguyễn Thị Lan",
    "partner_citizen_id": "001190012346",
    "partner_birth_date": "1992-05-20",
    "pledge": True,
}
# The agency's steps: route, body, event type, status after.
STEPS = [
    ("accept", {}, "dossier.accepted", 2),
    ("start-processing", {}, "dossier.processing_started", 4),
    ("complete", {"message": "Đã đăng ký"}, "dossier.completed", 9),
    ("hand-over", {"method": "in_person"}, "dossier.handed_over", 10),
]
RETRYABLE = {429, 500, 502, 503, 504}


def log(message: str) -> None:
    sys.stdout.write(f"[soak {time.strftime('%H:%M:%S', time.gmtime())}] {message}\n")
    sys.stdout.flush()


@dataclass
class Config:
    seconds: float = float(os.environ.get("SOAK_SECONDS", "600"))
    citizens: int = int(os.environ.get("SOAK_CITIZENS", "30"))
    rate: float = float(os.environ.get("SOAK_RATE", "30"))  # dossiers a minute, in all
    out: Path = Path(os.environ.get("SOAK_OUT", str(ROOT / "var" / "soak" / "results.json")))
    seed: int = int(os.environ.get("SOAK_SEED", "18"))

    @property
    def scale(self) -> float:
        """Fault durations relative to a 10-minute run."""
        return min(1.0, self.seconds / 600)


# --- HTTP with retries and fail-over -------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: collections.Counter[str] = collections.Counter()

    def note(self, what: str) -> None:
        with self.lock:
            self.answers[what] += 1


STATS = Stats()


def request(
    http: httpx.Client,
    bases: list[str],
    method: str,
    path: str,
    *,
    deadline: float,
    **kwargs: Any,
) -> tuple[httpx.Response, str]:
    """Send until an answer that is not a transport error or a retryable status, trying
    the web processes in order (the first is the caller's own); the answer and the base
    that gave it. TimeoutError at `deadline`."""
    pause = 0.2
    last = ""
    while time.monotonic() < deadline:
        for base in bases:
            try:
                response = http.request(method, base + path, **kwargs)
            except httpx.TransportError as exc:
                STATS.note(type(exc).__name__)
                last = type(exc).__name__
                continue
            STATS.note(str(response.status_code))
            if response.status_code in RETRYABLE or _in_flight(response):
                last = f"{response.status_code} {response.text[:120]}"
                break  # the service answered: wait, then try again from the start
            return response, base
        time.sleep(pause)
        pause = min(pause * 1.5, 2.0)
    raise TimeoutError(f"{method} {path}: no answer before the deadline (last: {last})")


def _in_flight(response: httpx.Response) -> bool:
    """409 `idempotency_request_in_flight`: the first try of this key is still running,
    or died with its web process (held IDEMPOTENCY_LOCK_SECONDS): ask again later, as
    its Retry-After says."""
    if response.status_code != 409:
        return False
    try:
        return response.json().get("code") == "idempotency_request_in_flight"
    except ValueError:
        return False


# --- Citizens: REST and one resuming socket each ---------------------------------------------


@dataclass
class Citizen:
    index: int
    phone: str
    user_id: str
    token: str  # bearer
    device_token: str
    bases: list[str]  # REST: own web first
    socket_bases: list[str]  # the socket: the other web first
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15))
    lock: threading.Lock = field(default_factory=threading.Lock)
    filings: int = 0

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept-Language": "vi", **(extra or {})}

    def call(
        self, method: str, path: str, deadline: float, **kwargs: Any
    ) -> tuple[httpx.Response, str]:
        headers = self.headers(kwargs.pop("headers", None))
        return request(
            self.http, self.bases, method, path, deadline=deadline, headers=headers, **kwargs
        )


class ResumingSocket(threading.Thread):
    """What the guide tells apps to do: one socket; after any drop, a new ticket and the
    last event id seen. Drops itself now and then (about every `drop_every` seconds)."""

    def __init__(self, citizen: Citizen, drop_every: float, rng: random.Random) -> None:
        super().__init__(daemon=True, name=f"socket-{citizen.index}")
        self.citizen = citizen
        self.record = SocketRecord(citizen=citizen.user_id)
        self.frames: list[dict[str, Any]] = []
        self.cursor: int | None = None
        self.drop_every = drop_every
        self.rng = rng
        self.connections = 0
        self.drops = collections.Counter[str]()
        self.no_cursor_opens: list[float] = []  # reopened with no cursor: times
        self.resyncs = 0
        self.connected = threading.Event()
        self.stop_drops = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.log: list[dict[str, Any]] = []  # one entry per connection
        self.current_opened = 0.0
        self.first_opened: dict[int, float] = {}  # event id: its delivering connection's start

    def event_ids(self) -> set[int]:
        with self.lock:
            return {event_id for event_id, _ in self.record.received}

    def _open(self) -> tuple[str, str]:
        """A ticket from the socket's web process (or the next one up): (URL, base)."""
        deadline = time.monotonic() + 20
        answer, base = request(
            self.citizen.http,
            self.citizen.socket_bases,
            "POST",
            "/api/v1/realtime/ticket",
            deadline=deadline,
            headers=self.citizen.headers(),
            json={},
        )
        if answer.status_code != 201:
            raise RuntimeError(f"ticket: {answer.status_code} {answer.text[:200]}")
        url = "ws" + base.removeprefix("http") + "/ws/v1/events?ticket=" + answer.json()["ticket"]
        if self.cursor is not None:
            url += f"&last_event_id={self.cursor}"
        elif self.connections:
            self.no_cursor_opens.append(time.time())
        return url, base

    def run(self) -> None:
        pause = 0.3
        while not self.stopping.is_set():
            try:
                url, base = self._open()
                socket = connect(url, open_timeout=10, close_timeout=2)
            except Exception as exc:  # down web, Redis or database: try again
                self.drops[f"open failed: {type(exc).__name__}"] += 1
                self.stopping.wait(pause)
                pause = min(pause * 1.5, 3.0)
                continue
            pause = 0.3
            with socket:
                self._connected(socket, base)

    def _connected(self, socket: ClientConnection, base: str) -> None:
        self.connections += 1
        entry: dict[str, Any] = {
            "opened": round(time.time(), 3),
            "web": base,
            "cursor": self.cursor,
            "frames": collections.Counter(),
        }
        self.log.append(entry)
        self.current_opened = entry["opened"]
        self.connected.set()
        drop_at = time.monotonic() + self.rng.expovariate(1 / self.drop_every)
        reason = "server closed"
        try:
            while not self.stopping.is_set():
                if (
                    not self.stop_drops.is_set()
                    and self.cursor is not None
                    and time.monotonic() > drop_at
                ):
                    reason = "dropped by the client"
                    break
                try:
                    message = socket.recv(timeout=0.5)
                except TimeoutError:
                    continue
                frame = json.loads(message)
                entry["frames"][str(frame.get("type"))] += 1
                self._frame(frame)
        except ConnectionClosed:
            pass
        except Exception as exc:  # a broken frame would be a finding: keep it
            reason = f"client error {type(exc).__name__}: {exc}"
        finally:
            self.connected.clear()
        entry["closed"] = round(time.time(), 3)
        entry["close_code"] = socket.close_code
        entry["reason"] = reason
        if self.stopping.is_set():
            return
        self.drops[reason] += 1
        if reason == "dropped by the client":
            self.stopping.wait(self.rng.uniform(0.2, 3.0))  # offline a moment

    def _frame(self, frame: dict[str, Any]) -> None:
        now = time.time()
        with self.lock:
            self.frames.append({"at": now, **frame})
            if frame.get("type") == "event":
                event_id = int(frame["id"])
                self.record.received.append((event_id, now))
                self.first_opened.setdefault(event_id, self.current_opened)
                self.cursor = event_id
            elif frame.get("type") == "resync":
                self.resyncs += 1

    def close(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


# --- The agency's back office ----------------------------------------------------------------


class AgencyDesk:
    """Moves submitted dossiers through the steps with signed requests, a few seconds
    apart; retries with the same X-Event-Id; `hurry()` drops the pauses (drain)."""

    def __init__(
        self, stack: Stack, key_id: str, secret: str, threads: int, rng: random.Random
    ) -> None:
        self.stack = stack
        self.key_id = key_id
        self.secret = secret
        self.rng = rng
        self.queue: list[tuple[float, int, str]] = []
        self.cond = threading.Condition()
        self.seq = 0
        self.records: dict[str, DossierRecord] = {}
        self.step_of: dict[str, int] = {}
        self.open: set[str] = set()
        self.failures: list[str] = []
        self.hurried = False
        self.stopping = False
        self.threads = [
            threading.Thread(target=self._work, args=(i,), daemon=True, name=f"agency-{i}")
            for i in range(threads)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def add(self, record: DossierRecord) -> None:
        with self.cond:
            self.records[record.id] = record
            self.step_of[record.id] = 0
            self.open.add(record.id)
            self._schedule(record.id)

    def _schedule(self, dossier_id: str) -> None:
        delay = 0.2 if self.hurried else self.rng.uniform(2, 8)
        self.seq += 1
        heapq.heappush(self.queue, (time.monotonic() + delay, self.seq, dossier_id))
        self.cond.notify()

    def hurry(self) -> None:
        with self.cond:
            self.hurried = True
            self.queue = [(0.0, seq, d) for _, seq, d in self.queue]
            heapq.heapify(self.queue)
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        for thread in self.threads:
            thread.join(timeout=30)

    def _work(self, index: int) -> None:
        http = httpx.Client(timeout=15)
        bases = list(self.stack.web_urls)
        bases = bases[index % len(bases) :] + bases[: index % len(bases)]
        while True:
            with self.cond:
                while not self.stopping and (not self.queue or self.queue[0][0] > time.monotonic()):
                    wait = self.queue[0][0] - time.monotonic() if self.queue else 1.0
                    self.cond.wait(timeout=max(0.05, min(wait, 1.0)))
                if self.stopping:
                    return
                _, _, dossier_id = heapq.heappop(self.queue)
                record = self.records[dossier_id]
                step = self.step_of[dossier_id]
            try:
                self._move(http, bases, record, step)
            except Exception as exc:
                self.failures.append(f"{record.code} {STEPS[step][0]}: {exc}")
                log(f"agency gave up on {record.code} {STEPS[step][0]}: {exc}")
                with self.cond:
                    self.open.discard(dossier_id)
                continue
            with self.cond:
                record.acknowledged.append(STEPS[step][2])
                self.step_of[dossier_id] = step + 1
                if step + 1 < len(STEPS):
                    self._schedule(dossier_id)
                else:
                    self.open.discard(dossier_id)

    def _signed(self, method: str, path: str, event: str, raw: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {
            "X-Agency-Key": self.key_id,
            "X-Timestamp": stamp,
            "X-Event-Id": event,
            "X-Signature": sign_agency(self.secret, method, path, stamp, event, raw),
        }

    def _move(self, http: httpx.Client, bases: list[str], record: DossierRecord, step: int) -> None:
        route, body, _, target = STEPS[step]
        path = f"/api/v1/agency/dossiers/{record.code}/{route}"
        if route == "complete":  # a form (the result file is optional)
            built = http.build_request("POST", "http://x" + path, files={}, data=body)
            raw, content_type = built.read(), built.headers["Content-Type"]
        else:
            raw, content_type = json.dumps(body).encode(), "application/json"
        event = uuid.uuid4().hex  # the same for every retry of this move
        deadline = time.monotonic() + 120
        pause = 0.3
        while True:
            # A fresh timestamp and signature each time (the replay window), same event id.
            headers = {"Content-Type": content_type, **self._signed("POST", path, event, raw)}
            answer, _ = request(
                http, bases, "POST", path, deadline=deadline, content=raw, headers=headers
            )
            if answer.status_code == 200:
                return
            if answer.status_code == 409 and self._status(record.code) >= target:
                return  # it went through, its answer was lost (a killed web process)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{answer.status_code} {answer.text[:200]}")
            time.sleep(pause)
            pause = min(pause * 1.5, 3)

    def _status(self, code: str) -> int:
        """The dossier's status in the database (the agency API has no single-dossier
        read; the soak only uses it to tell a lost answer from a refused move)."""
        rows = self.stack.sql("SELECT status FROM dossiers_dossier WHERE code = %s", (code,))
        return int(rows[0][0]) if rows else -1


# --- A PostgreSQL cluster of its own, migrated once ---------------------------------------

TEMPLATE = "citizen_soak_template"


def soak_postgres(workdir: Path) -> PostgresServer:
    """The soak's own PostgreSQL cluster, started, holding TEMPLATE (migrated, demo data).

    Not the shared server: other suites' load there would skew what the soak
    measures. The migrated cluster is kept in var/soak/pgdata-<digest
    of the migrations and demo loaders> and copied for each run (seconds, instead of
    migrating for two minutes on a busy machine); older copies are removed."""
    digest = hashlib.sha256()
    sources = sorted(ROOT.glob("*/migrations/*.py")) + sorted(ROOT.glob("*/demo*.*"))
    sources += sorted(ROOT.glob("*/management/commands/load_demo.py"))
    for path in sources:
        digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    home = ROOT / "var" / "soak"
    seed = home / f"pgdata-{digest.hexdigest()[:12]}"
    for old in home.glob("pgdata-*"):
        if old != seed:
            shutil.rmtree(old, ignore_errors=True)
    if not seed.exists():
        log(f"migrating the soak's PostgreSQL cluster {seed.name} (once per migration change)")
        building = PostgresServer(seed.with_suffix(".building"), log_dir=workdir)
        shutil.rmtree(building.datadir, ignore_errors=True)
        building.init().start()
        try:
            url = create_database(building.admin_url, TEMPLATE)
            env = child_env(
                {
                    "DATABASE_URL": url,
                    "JOBS_INLINE": "0",
                    "REDIS_URL": "",
                    "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                }
            )
            manage("migrate", "--noinput", env=env, timeout=300)
            manage("load_demo", env=env, timeout=120)
        finally:
            building.stop()
        building.datadir.rename(seed)
    scratch = Path(tempfile.mkdtemp(prefix="soak-pg-"))
    scratch.chmod(0o755)  # the server's user reaches its data directory inside
    return PostgresServer(scratch / "data", log_dir=workdir).init(seed=seed).start()


# --- The soak ---------------------------------------------------------------------------------


class Soak:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = time.monotonic()
        self.rng = random.Random(config.seed)
        self.workdir = ROOT / "var" / "soak" / time.strftime("run-%Y%m%d-%H%M%S", time.gmtime())
        env = {
            # Push retries paced for a bounded run (production: 30 s base, 1 h max).
            "PUSH_RETRY_BASE_SECONDS": "2",
            "PUSH_RETRY_MAX_SECONDS": "10",
            "PUSH_QUOTA_MIN_WAIT_SECONDS": "2",
            "SMS_PER_IP_PER_DAY": "1000",
            "WORKER_EXIT_TIMEOUT_SECONDS": "5",
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.postgres = soak_postgres(self.workdir)
        self.stack = Stack(
            self.workdir,
            db_proxy=True,
            extra_env=env,
            webs=2,
            workers=2,
            s3=True,
            template=TEMPLATE,
            admin_url=self.postgres.admin_url,
        )
        self.citizens: list[Citizen] = []
        self.sockets: list[ResumingSocket] = []
        self.dossiers: dict[str, DossierRecord] = {}
        self.dossier_lock = threading.Lock()
        self.filing_failures: list[str] = []
        self.faults: list[dict[str, Any]] = []
        self.worker_exits: list[tuple[int, int]] = []
        self.closing = threading.Event()
        self.retired_webs: set[int] = set()
        self.planned_faults = 6
        self.procedure_id = 0
        self.pending_filings = 0
        self.filings_lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- setup --
    def setup(self) -> None:
        log(f"starting the stack in {self.workdir} (2 web, 2 workers, PostgreSQL via a proxy)")
        self.stack.start()
        log(f"stack up in {self.stack.startup_seconds:.0f} s")
        threading.Thread(target=self._supervise_workers, daemon=True).start()
        out = self.stack.python(
            "import json\n"
            "from dossiers.agency.credentials import create_credential\n"
            "from dossiers.events import EventType\n"
            "from dossiers.models import Agency, Procedure\n"
            "from notifications.templates import template_for\n"
            f"c, s = create_credential(Agency.objects.get(code={AGENCY_CODE!r}), 'soak')\n"
            f"p = Procedure.objects.get(code={PROCEDURE_CODE!r}).pk\n"
            "print(json.dumps({'key': c.key_id, 'secret': s, 'procedure': p,"
            " 'notified': [t.value for t in EventType if template_for(t.value)]}))\n"
        )
        facts = json.loads(out.strip().splitlines()[-1])
        self.procedure_id = int(facts["procedure"])
        self.notified_types = set(facts["notified"])
        self.desk = AgencyDesk(self.stack, facts["key"], facts["secret"], 4, self.rng)
        self.desk.start()
        log(f"signing up {self.config.citizens} citizens")
        with_threads(self._sign_up, range(self.config.citizens), threads=4)
        self.citizens.sort(key=lambda c: c.index)
        for citizen in self.citizens:
            rng = random.Random(self.config.seed * 1000 + citizen.index)
            socket = ResumingSocket(citizen, drop_every=90, rng=rng)
            self.sockets.append(socket)
            socket.start()
        wait_until(
            lambda: all(s.connected.is_set() for s in self.sockets),
            timeout=60,
            what="every citizen's socket",
        )
        # Each citizen's first dossier, so that every socket has a cursor to resume from.
        log("first dossier of each citizen")
        with_threads(self._file, self.citizens, threads=4)
        wait_until(
            lambda: all(s.cursor is not None for s in self.sockets),
            timeout=60,
            what="every socket's first event",
        )
        log(f"setup done at {self.elapsed():.0f} s")

    def _sign_up(self, index: int) -> None:
        phone = f"+8498{7700000 + index:07d}"
        app = sign_up(self.stack, phone)
        device_token = f"fcm-soak-{index:03d}-" + uuid.uuid4().hex * 2
        register_device(app, device_token)
        quiet = app.patch(
            "/api/v1/notifications/preferences",
            {
                "quiet_hours_enabled": False,
                "status_changes": True,
                "action_requests": True,
                "delivery_updates": True,
            },
        )
        assert quiet.status_code == 200, quiet.text
        user_id = str(
            self.stack.sql("SELECT id FROM accounts_user WHERE phone = %s", (phone,))[0][0]
        )
        webs = self.stack.web_urls
        own = index % len(webs)
        citizen = Citizen(
            index=index,
            phone=phone,
            user_id=user_id,
            token=str(app.token),
            device_token=device_token,
            bases=webs[own:] + webs[:own],
            socket_bases=webs[own + 1 :] + webs[: own + 1],
        )
        app.close()
        self.citizens.append(citizen)

    def _file(self, citizen: Citizen) -> None:
        """Draft and submit one dossier; then the agency takes it."""
        with citizen.lock:
            citizen.filings += 1
            deadline = time.monotonic() + 120
            key = uuid.uuid4().hex
            try:
                answer, _ = citizen.call(
                    "POST",
                    "/api/v1/dossiers",
                    deadline,
                    json={"procedure_id": self.procedure_id, "form": FORM},
                    headers={"Idempotency-Key": key},
                )
                if answer.status_code not in (200, 201):
                    raise RuntimeError(f"draft: {answer.status_code} {answer.text[:200]}")
                dossier_id = str(answer.json()["id"])
                record = DossierRecord(id=dossier_id, citizen=citizen.user_id)
                with self.dossier_lock:
                    self.dossiers[dossier_id] = record
                answer, _ = citizen.call("POST", f"/api/v1/dossiers/{dossier_id}/submit", deadline)
                if answer.status_code == 409:  # went through, answer lost: read it
                    answer, _ = citizen.call("GET", f"/api/v1/dossiers/{dossier_id}", deadline)
                    if int(answer.json().get("status", 0)) < 1:
                        raise RuntimeError(f"submit: 409 and still a draft: {answer.text[:200]}")
                elif answer.status_code != 200:
                    raise RuntimeError(f"submit: {answer.status_code} {answer.text[:200]}")
                record.code = str(answer.json()["code"])
                record.acknowledged.append("dossier.submitted")
            except Exception as exc:
                self.filing_failures.append(f"citizen {citizen.index}: {exc}")
                log(f"filing failed for citizen {citizen.index}: {exc}")
                return
        self.desk.add(record)

    # -- processes --
    def _supervise_workers(self) -> None:
        """Restart any worker that exits (systemd Restart=always), after a second."""
        stack = self.stack
        while not self.closing.wait(0.2):
            for index, worker in enumerate(stack.workers):
                if worker is None or (status := worker.exit_status()) is None:
                    continue
                self.worker_exits.append((index, status))
                if self.closing.wait(1.0):
                    return
                stack.workers[index] = stack._process("worker", index=index).spawn()

    # -- load --
    def load(self, seconds: float, hard_end: float) -> None:
        """File dossiers at the configured rate for `seconds`, and on until the last
        fault is over and recovered from, while the faults run; never past `hard_end`."""
        faults_done = threading.Event()
        fault_thread = threading.Thread(
            target=self._faults, args=(seconds, hard_end, faults_done), daemon=True
        )
        fault_thread.start()
        interval = 60.0 / self.config.rate
        end = time.monotonic() + seconds
        next_at = time.monotonic()
        turn = 0
        filers: list[threading.Thread] = []
        while time.monotonic() < hard_end and (time.monotonic() < end or not faults_done.is_set()):
            now = time.monotonic()
            if now < next_at:
                time.sleep(min(next_at - now, 0.5))
                continue
            next_at += interval * self.rng.uniform(0.5, 1.5)
            citizen = self.citizens[turn % len(self.citizens)]
            turn += 1
            if citizen.lock.locked():
                continue  # still filing the last one (a fault): the rate drops a little
            thread = threading.Thread(target=self._file, args=(citizen,), daemon=True)
            thread.start()
            filers.append(thread)
        if not faults_done.is_set():
            log("the load phase ended before every fault was over (time bound)")
        for thread in filers:
            thread.join(timeout=130)
        fault_thread.join(timeout=120)

    def healthy(self) -> bool:
        """Every web process still in service answers /readyz, both workers beat."""
        stack = self.stack
        for index, url in enumerate(stack.web_urls):
            if index in self.retired_webs:
                continue
            if httpx.get(f"{url}/readyz", timeout=3).status_code != 200:
                return False
        return stack._heartbeats() >= len(stack.workers)

    def _faults(self, seconds: float, hard_end: float, done: threading.Event) -> None:
        """The six faults, one at a time: each at its planned time, but never before the
        stack recovered from the previous one and ran normally for a few seconds."""
        scale = self.config.scale
        plan = [
            ("worker SIGKILL, restarted", self._kill_worker, 0.0),
            ("Redis down", self._redis_down, 20 * scale),
            ("PostgreSQL cut off", self._database_down, 15 * scale),
            ("FCM answers 503/429", self._fcm_down, 30 * scale),
            ("web SIGKILL, restarted", self._kill_web_and_restart, 0.0),
            ("one web of two killed for good", self._kill_web_for_good, 0.0),
        ]
        chosen = os.environ.get("SOAK_FAULTS", "all")  # "none" to debug the load alone
        if chosen != "all":
            plan = [p for n, p in enumerate(plan, 1) if str(n) in chosen.split(",")]
        self.planned_faults = len(plan)
        gap = seconds / (len(plan) + 0.5) if plan else seconds
        start = time.monotonic()
        quiet_before = max(5.0, 10.0 * scale)  # normal running between two faults
        ready_at = start
        try:
            for number, (name, action, duration) in enumerate(plan):
                at = max(start + gap * (number + 0.5), ready_at + quiet_before)
                while time.monotonic() < at:
                    time.sleep(0.2)
                if time.monotonic() > hard_end:
                    log(f"fault {number + 1} ({name}) skipped: the load phase is over")
                    self.faults.append({"fault": name, "error": "skipped: time bound"})
                    continue
                began = time.monotonic()
                log(f"fault {number + 1}: {name} ({duration:.1f} s)")
                entry: dict[str, Any] = {"fault": name, "at_s": round(began - self.started, 1)}
                try:
                    entry.update(action(duration))
                except Exception as exc:
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                    log(f"fault {name} failed: {traceback.format_exc()}")
                ended = time.monotonic()
                entry["took_s"] = round(ended - began, 1)
                try:
                    wait_until(self.healthy, timeout=120, interval=0.5, what="recovery")
                    entry["recovered_after_s"] = round(time.monotonic() - ended, 1)
                except TimeoutError:
                    entry["recovered_after_s"] = None
                    log(f"no recovery from fault {number + 1} in 120 s")
                ready_at = time.monotonic()
                self.faults.append(entry)
                log(f"fault {number + 1} over: {entry}")
        finally:
            done.set()

    def _kill_worker(self, _: float) -> dict[str, Any]:
        victim = self.rng.randrange(len(self.stack.workers))
        newest = self.stack.sql("SELECT coalesce(max(id), 0) FROM procrastinate_workers")[0][0]
        began = time.monotonic()
        self.stack.kill_worker_at(victim)  # the supervisor restarts it
        wait_until(
            lambda: self.stack.sql(
                "SELECT count(*) FROM procrastinate_workers WHERE id > %s", (newest,)
            )[0][0],
            timeout=90,
            what="the restarted worker's first heartbeat",
        )
        return {"worker": victim, "replaced_in_s": round(time.monotonic() - began, 1)}

    def _redis_down(self, duration: float) -> dict[str, Any]:
        self.stack.redis.stop()
        time.sleep(duration)  # the fault's length, not a wait for a condition
        self.stack.redis.start()
        return {"down_s": duration}

    def _database_down(self, duration: float) -> dict[str, Any]:
        assert self.stack.proxy is not None
        self.stack.proxy.cut()
        time.sleep(duration)  # the fault's length
        self.stack.proxy.restore()
        return {"down_s": duration}

    def _fcm_down(self, duration: float) -> dict[str, Any]:
        """FCM refuses every send for `duration`, and on (at most twice as long again)
        until it refused at least one: a window with no push to refuse tests nothing."""

        def refused() -> dict[str, int]:
            after = self.stack.fcm.stats()["outcomes"]
            codes = ("UNAVAILABLE", "QUOTA_EXCEEDED")
            return {k: after.get(k, 0) - before.get(k, 0) for k in codes}

        before = self.stack.fcm.stats()["outcomes"]
        began = time.monotonic()
        self.stack.fcm.faults = 1.0  # every send: 429 (Retry-After 1) or 503
        time.sleep(duration)  # the fault's length
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: sum(refused().values()), timeout=2 * duration, what="a refusal")
        self.stack.fcm.faults = 0.0
        return {"down_s": round(time.monotonic() - began, 1), "refused": refused()}

    def _kill_web_and_restart(self, _: float) -> dict[str, Any]:
        self.stack.kill_web(0)
        began = time.monotonic()
        self.restart_web(0)
        return {"web": 0, "restarted_in_s": round(time.monotonic() - began, 1)}

    def restart_web(self, index: int) -> None:
        """Start web process `index` again and wait, patiently, until it is ready: on a
        busy 2-core machine a fresh process takes tens of seconds (Stack.start_web gives
        up and stops it after 60 s with 2 s readiness probes)."""
        stack = self.stack
        port = stack.web_ports[index]
        web = stack._process("web", {"PORT": str(port)}, index)
        stack.webs[index] = web.spawn()
        wait_until(
            lambda: (
                web.running()
                and httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
            ),
            timeout=240,
            interval=0.5,
            what=f"web process {index} restarted",
        )

    def _kill_web_for_good(self, _: float) -> dict[str, Any]:
        on_it = sum(1 for s in self.sockets if s.citizen.socket_bases[0] == self.stack.web_urls[1])
        self.retired_webs.add(1)
        self.stack.kill_web(1)
        return {"web": 1, "sockets_on_it": on_it}

    # -- drain --
    def drain(self, deadline: float) -> dict[str, Any]:
        """Finish the agency's work, then wait until every job is done and every delivery
        final, then until every socket caught up: each a condition, all bounded."""
        self.desk.hurry()
        took: dict[str, Any] = {}
        began = time.monotonic()
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: not self.desk.open,
                timeout=max(1.0, deadline - time.monotonic()),
                interval=0.5,
                what="the agency's last steps",
            )
        took["agency_s"] = round(time.monotonic() - began, 1)
        with contextlib.suppress(TimeoutError):
            wait_until(
                self._quiet,
                timeout=max(1.0, deadline - time.monotonic()),
                interval=1.0,
                what="every job done, every delivery final",
            )
        took["quiet_s"] = round(time.monotonic() - began, 1)
        took["quiet"] = bool(self._quiet())
        for socket in self.sockets:
            socket.stop_drops.set()
        expected = self._events_by_citizen()
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: all(
                    expected.get(s.citizen.user_id, set()) <= s.event_ids() for s in self.sockets
                ),
                timeout=max(1.0, min(60.0, deadline - time.monotonic())),
                interval=0.5,
                what="every socket caught up",
            )
        took["sockets_s"] = round(time.monotonic() - began, 1)
        return took

    def _quiet(self) -> bool:
        """No job left to run (periodic ones aside), no delivery waiting to be sent or
        retried, nothing in flight at FCM, every notified event fanned out; twice, 2 s
        apart."""

        def once() -> bool:
            jobs = self.stack.sql(
                "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
                "AND queue_name <> 'maintenance' AND task_name NOT IN "
                "(SELECT DISTINCT task_name FROM procrastinate_periodic_defers)"
            )[0][0]
            waiting = self.stack.sql(
                "SELECT count(*) FROM notifications_delivery "
                "WHERE state IN ('created', 'temporary-failure')"
            )[0][0]
            unfanned = self.stack.sql(
                "SELECT count(*) FROM tracking_dossierevent e WHERE e.type = ANY(%s) "
                "AND NOT EXISTS (SELECT 1 FROM notifications_notification n "
                "WHERE n.event_id = e.id)",
                (sorted(self.notified_types),),
            )[0][0]
            return jobs == 0 and waiting == 0 and unfanned == 0 and self.stack.fcm.in_flight == 0

        if not once():
            return False
        time.sleep(2)  # the same answer twice: nothing was between two states
        return once()

    def _events(self) -> list[Event]:
        rows = self.stack.sql(
            "SELECT id, dossier_id::text, type, actor_user_id::text, "
            "extract(epoch FROM created_at)::float8 FROM tracking_dossierevent ORDER BY id"
        )
        return [Event(int(r[0]), str(r[1]), str(r[2]), r[3], float(r[4])) for r in rows]

    def _events_by_citizen(self) -> dict[str, set[int]]:
        owner = {d.id: d.citizen for d in self.dossiers.values()}
        result: dict[str, set[int]] = collections.defaultdict(set)
        for event in self._events():
            if event.dossier_id in owner:
                result[owner[event.dossier_id]].add(event.id)
        return result

    # -- reconciliation --
    def collect_and_reconcile(self) -> dict[str, Any]:
        events = self._events()
        applicant = dict(
            self.stack.sql("SELECT id::text, applicant_id::text FROM dossiers_dossier")
        )
        ours = {c.user_id for c in self.citizens}
        # Dossiers in the database that no client filing knows (a duplicated draft).
        by_citizen_db = collections.Counter(a for a in applicant.values() if a in ours)
        # Events each socket cannot get by protocol: down with no cursor (see reconcile.py).
        owner = {d.id: d.citizen for d in self.dossiers.values()}
        for socket in self.sockets:
            socket.close()
        for socket in self.sockets:
            record = socket.record
            mine = {e.id for e in events if owner.get(e.dossier_id) == socket.citizen.user_id}
            record.foreign = [i for i, _ in record.received if i not in mine]
            if socket.no_cursor_opens:
                last = max(socket.no_cursor_opens)
                seen = socket.event_ids()
                record.excused = {
                    e.id
                    for e in events
                    if e.id in mine and e.id not in seen and e.created_at <= last + 1
                }
        pushes = [
            (int(m["data"]["event_id"]), str(m["token"]))
            for m in self.stack.fcm.accepted()
            if "event_id" in m.get("data", {})
        ]
        inbox = {c.user_id: self._inbox(c) for c in self.citizens}
        tokens = {}
        for citizen in self.citizens:
            active = self.stack.sql(
                "SELECT token FROM notifications_device WHERE user_id = %s AND active",
                (citizen.user_id,),
            )
            tokens[citizen.user_id] = [str(t) for (t,) in active]
        superseded = [
            (int(event_id), str(token))
            for event_id, token in self.stack.sql(
                "SELECT n.event_id, d.token FROM notifications_delivery r "
                "JOIN notifications_notification n ON n.id = r.notification_id "
                "JOIN notifications_device d ON d.id = r.device_id "
                "WHERE r.error_code = 'SUPERSEDED' AND n.event_id IS NOT NULL"
            )
        ]
        result = reconcile(
            superseded=superseded,
            dossiers=self.dossiers,
            events=events,
            notified_types=self.notified_types,
            sockets={s.citizen.user_id: s.record for s in self.sockets},
            tokens=tokens,
            pushes=pushes,
            inbox=inbox,
        )
        result["dossier_count"] = {
            "filed": sum(c.filings for c in self.citizens),
            "in_database": sum(by_citizen_db.values()),
            "submitted": sum(1 for d in self.dossiers.values() if d.acknowledged),
            "handed_over": sum(
                1 for d in self.dossiers.values() if "dossier.handed_over" in d.acknowledged
            ),
        }
        extra = result["dossier_count"]["in_database"] - result["dossier_count"]["filed"]
        result["dossier_count"]["duplicated"] = max(0, extra)
        if extra > 0:
            result["ok"] = False
        records = {s.citizen.user_id: s.record for s in self.sockets}
        opened = {s.citizen.user_id: s.first_opened for s in self.sockets}
        result["socket_lateness"] = lateness(events, records, opened)
        result["timeline"] = self._timeline(events, opened)
        result["sockets"] = {
            "connections": sum(s.connections for s in self.sockets),
            "drops": dict(sum((s.drops for s in self.sockets), collections.Counter())),
            "resyncs": sum(s.resyncs for s in self.sockets),
            "no_cursor_reopens": sum(len(s.no_cursor_opens) for s in self.sockets),
            "tokens_per_citizen": sorted({len(t) for t in tokens.values()}),
        }
        result["socket_logs"] = {s.citizen.index: s.log for s in self.sockets}
        result["fcm"] = self.stack.fcm.stats()
        result["deliveries"] = {
            f"{state} {code}".strip(): count
            for state, code, count in self.stack.sql(
                "SELECT state, error_code, count(*) FROM notifications_delivery "
                "GROUP BY state, error_code"
            )
        }
        result["jobs"] = [
            list(r)
            for r in self.stack.sql(
                "SELECT task_name, status, count(*), max(attempts) FROM procrastinate_jobs "
                "GROUP BY task_name, status ORDER BY task_name, status"
            )
        ]
        return result

    def _timeline(
        self, events: list[Event], opened: dict[str, dict[int, float]]
    ) -> list[dict[str, Any]]:
        """Per 10 s of the run (from the first soak event): events committed, pushes
        accepted and refused by FCM, and the live frames of those events: how many
        arrived more than 3 s after the commit, and the latest. Shows what each fault did."""
        if not events:
            return []
        origin = min(e.created_at for e in events)
        rows: dict[int, dict[str, Any]] = collections.defaultdict(
            lambda: {"events": 0, "pushed": 0, "refused": 0, "late_frames": 0, "max_late_s": 0.0}
        )
        for event in events:
            rows[int((event.created_at - origin) // 10)]["events"] += 1
        for attempt in self.stack.fcm.log()["attempts"]:
            row = rows[int((attempt["at"] - origin) // 10)]
            row["pushed" if attempt["outcome"] == "ok" else "refused"] += 1
        created = {e.id: e.created_at for e in events}
        for socket in self.sockets:
            since = opened.get(socket.citizen.user_id, {})
            first: dict[int, float] = {}
            for event_id, at in socket.record.received:
                first.setdefault(event_id, at)
            for event_id, at in first.items():
                if event_id not in created or created[event_id] < since.get(event_id, 0.0):
                    continue  # a replay after a resume
                late = at - created[event_id]
                row = rows[int((created[event_id] - origin) // 10)]
                row["max_late_s"] = round(max(row["max_late_s"], late), 2)
                row["late_frames"] += late > 3
        offset = origin - (time.time() - self.elapsed())  # seconds since the soak started
        return [{"from_s": round(offset + 10 * bucket), **rows[bucket]} for bucket in sorted(rows)]

    def _inbox(self, citizen: Citizen) -> list[int]:
        """Every inbox item's event id, read through the API as the app does."""
        ids: list[int] = []
        cursor = None
        deadline = time.monotonic() + 60
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            answer, _ = citizen.call("GET", "/api/v1/notifications", deadline, params=params)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            ids += [int(item["event_id"]) for item in page["items"] if item.get("event_id")]
            cursor = page.get("next_cursor")
            if not cursor:
                return ids

    # -- the whole run --
    def run(self) -> int:
        config = self.config
        total_deadline = self.started + config.seconds - 20  # reconcile and report
        drain_reserve = max(45.0, 0.2 * config.seconds)
        result: dict[str, Any] = {}
        try:
            self.setup()
            # Six faults, each with its recovery and a quiet spell, need about two minutes
            # even scaled down: a short SOAK_SECONDS is overrun rather than a fault skipped.
            load_seconds = max(120.0, total_deadline - drain_reserve - time.monotonic())
            log(
                f"load for {load_seconds:.0f} s: {config.citizens} citizens, "
                f"{config.rate:g} dossiers a minute, 6 faults (scale {config.scale:.2f})"
            )
            load_started = time.monotonic()
            # Faults that need longer to recover from may stretch the load phase into
            # the drain's reserve, down to its 45 s minimum.
            self.load(load_seconds, max(load_started + load_seconds + 60, total_deadline - 45))
            load_took = time.monotonic() - load_started
            log(f"load done ({len(self.dossiers)} dossiers); draining")
            drain = self.drain(max(total_deadline, time.monotonic() + 45))
            log(f"drain: {drain}")
            if not any(
                web is not None and web.running()
                for index, web in enumerate(self.stack.webs)
                if index not in self.retired_webs
            ):
                # The reconciliation reads the inboxes through the API, as the app does.
                log("no web process in service: starting web 0 to read the inboxes")
                self.restart_web(0)
                drain["web_restarted_to_reconcile"] = True
            result = self.collect_and_reconcile()
            result["run"] = {
                "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "soak_seconds": config.seconds,
                "citizens": config.citizens,
                "rate_per_minute": config.rate,
                "setup_s": round(load_started - self.started, 1),
                "load_s": round(load_took, 1),
                "drain": drain,
                "total_s": round(self.elapsed(), 1),
                "load_average": list(os.getloadavg()),
                "faults": self.faults,
                "worker_exits": self.worker_exits,
                "agency_failures": self.desk.failures,
                "filing_failures": self.filing_failures,
                "http_answers": dict(STATS.answers),
            }
            if self.desk.failures or self.filing_failures:
                result["ok"] = False
            if len(self.faults) < self.planned_faults or any("error" in f for f in self.faults):
                log("not every fault was injected as planned: the run does not pass")
                result["ok"] = False
        except Exception:
            log(f"the soak itself failed:\n{traceback.format_exc()}")
            self.closing.set()
            with contextlib.suppress(Exception):
                sys.stdout.write(self.stack.dump_logs()[-6000:] + "\n")
            return 2
        finally:
            self.closing.set()
            with contextlib.suppress(Exception):
                self.desk.stop()
            for socket in self.sockets:
                socket.stopping.set()
            self.stack.close()
            self.postgres.stop()
            shutil.rmtree(self.postgres.datadir.parent, ignore_errors=True)
        sys.stdout.write(table(result) + "\n")
        sys.stdout.write(
            json.dumps(
                {
                    k: result[k]
                    for k in ("dossier_count", "socket_lateness", "sockets", "deliveries")
                },
                indent=1,
            )
            + "\n"
        )
        sys.stdout.write("every 10 s: events, pushes ok/refused, live frames >3 s late, latest\n")
        for row in result["timeline"]:
            sys.stdout.write(
                f"  t={row['from_s']:>4} s  events {row['events']:>3}  pushes "
                f"{row['pushed']:>3}/{row['refused']:<3} late frames {row['late_frames']:>3} "
                f"(max {row['max_late_s']:.1f} s)\n"
            )
        for entry in result["run"]["faults"]:
            sys.stdout.write(f"fault: {json.dumps(entry, ensure_ascii=False)}\n")
        if result["problems"]:
            sys.stdout.write(f"problems (first 40 of {len(result['problems'])}):\n")
            for problem in result["problems"][:40]:
                sys.stdout.write(f"  {problem}\n")
        config.out.parent.mkdir(parents=True, exist_ok=True)
        config.out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
        log(f"figures written to {config.out}; run logs in {self.workdir}")
        return 0 if result["ok"] else 1


def with_threads(function: Any, items: Any, threads: int) -> None:
    """Run `function` on each item, `threads` at a time; the first failure is raised."""
    pending = list(items)
    failures: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending or failures:
                    return
                item = pending.pop(0)
            try:
                function(item)
            except BaseException as exc:
                failures.append(exc)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]


def main() -> int:
    return Soak(Config()).run()


if __name__ == "__main__":
    sys.exit(main())
