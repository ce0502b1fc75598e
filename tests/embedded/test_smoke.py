"""The embedded default does the whole journey: `make run`'s server as a process.

What a newcomer gets with nothing configured (SQLite, no Redis, the in-memory job
queue worked in the web process, the loopback carrier that `make run` starts):
the test starts `make run` (installation skipped: `make test` did it) with only a
fresh SQLite file, media and outbox folders and a free port, then runs the shell
blocks of `mobile_api_docs/first-journey.md` as they are (so the guide cannot
drift) and checks what they left behind: the socket's frames, the pushes in the
outbox with their delivery rows `delivered`, the carrier order (placed after the
carrier failed, by the job queue's retry), the booking delivered by webhook, the
rating. A second test holds a push in quiet hours.

This is the one place the suite runs on SQLite: the server under test is the
embedded default itself, in its own process; the test only reads its database file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.parse
import uuid
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dossiers.agency.signing import sign as sign_agency
from fakes.harness import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "mobile_api_docs" / "first-journey.md"
VIETNAM = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
# The demo data `make run` loads (dossiers/demo_agency_credentials.json, auth/demo_accounts.json).
AGENCY_KEY = "ak_demo_hn_badinh"
AGENCY_SECRET = "demo-agency-secret-HN-BADINH-not-for-production"  # nosec B105
# What the guide runs in place of websocat (not packaged in Debian 12), and a curl
# that fails the script on an HTTP error instead of printing the error body only.
PRELUDE = f"""set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
websocat() {{ "{ROOT}/.venv/bin/python" -m tests.embedded.websocat "$@"; }}
curl() {{ command curl --fail-with-body "$@"; }}
"""


class EmbeddedServer:
    """`make run` in a session of its own (make, the launcher and uvicorn stop together)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.outbox = workdir / "outbox"
        self.database = workdir / "db.sqlite3"
        self.log_path = workdir / "make-run.log"
        # Nothing configured: no DATABASE_URL to PostgreSQL, no REDIS_URL, no job or
        # carrier settings; only where to keep files and which port to use.
        self.env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
        self.env.update(
            {
                "DATABASE_URL": f"sqlite:///{self.database}",
                "MEDIA_ROOT": str(workdir / "media"),
                "OUTBOX_DIR": str(self.outbox),
                "PYTHONPATH": str(ROOT),
            }
        )
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(  # nosec B603 # our own make target
                ["make", "--no-print-directory", "run", "NO_INSTALL=1", f"PORT={self.port}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, timeout=240, interval=0.5, what="make run serving")

    def _ready(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            raise AssertionError(f"make run exited ({self.popen.returncode}):\n{self.log()}")
        return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def printed(self, pattern: str) -> str:
        match = re.search(pattern, self.log_path.read_text(errors="replace"))
        assert match is not None, f"make run did not print {pattern!r}:\n{self.log()}"
        return match.group(1)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(query, params).fetchall()

    def pushes(self) -> list[dict[str, Any]]:
        path = self.outbox / "push.jsonl"
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["message"] for line in lines if line]

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    running = EmbeddedServer(tmp_path_factory.mktemp("embedded"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


def guide_script() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) >= 8, "the guide's shell blocks were not found"
    return PRELUDE + "\n".join(blocks)


def carrier_faults(base_url: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{base_url}/_fake/faults", json=body, timeout=5)
    assert response.status_code == 200, response.text


def test_make_run_prints_the_demo_logins_the_agency_key_and_the_port(
    server: EmbeddedServer,
) -> None:
    assert server.printed(r"Demo citizen: (\+84\d+) /") == "+84912345678"
    assert server.printed(r"Demo admin: +(\+84\d+) /") == "+84900000001"
    assert server.printed(r"X-Agency-Key (\S+) /") == AGENCY_KEY
    assert server.printed(r"X-Agency-Key \S+ / secret (\S+)") == AGENCY_SECRET
    assert server.printed(r"Port: (\d+)") == str(server.port)
    assert server.printed(r"fakes\.carrier on (http://127\.0\.0\.1:\d+)")


def test_the_first_journey_guide_walks_the_whole_journey(
    server: EmbeddedServer, tmp_path: Path
) -> None:
    carrier_url = server.printed(r"fakes\.carrier on (http://127\.0\.0\.1:\d+)")
    # The carrier is down for the first order: one job try's worth of calls (the call
    # and its in-call retries) fails, so only the job queue's retry places the order.
    failure = {"kind": "error", "status": 503, "path_contains": "/v1/orders"}
    carrier_faults(carrier_url, {"next": [failure] * 3})
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    phone = "+84987650123"
    with (tmp_path / "guide.log").open("wb") as output:
        done = subprocess.run(  # nosec B603 # the guide's own commands
            ["bash", "-c", guide_script()],
            cwd=tmp_path,
            env={
                **server.env,
                "BASE": server.base_url,
                "OUTBOX": str(server.outbox),
                "PHONE": phone,
            },
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    guide_log = (tmp_path / "guide.log").read_text(errors="replace")
    assert done.returncode == 0, f"{guide_log[-4000:]}\n--- make run:\n{server.log()}"

    # The socket carried every step of the dossier, in the log's order, each once.
    frames = [json.loads(line) for line in (tmp_path / "frames.jsonl").read_text().splitlines()]
    events = [frame for frame in frames if frame["type"] == "event"]
    assert [event["event_type"] for event in events] == [
        "dossier.submitted",
        "dossier.accepted",
        "dossier.completed",
        "delivery.booked",
        "delivery.picked_up",
        "delivery.delivered",
        "dossier.handed_over",
        "dossier.rated",
    ]
    [dossier_id] = {event["dossier_id"] for event in events}
    [code] = {event["dossier_code"] for event in events}

    # Pushes of the others' steps reached the outbox, and every delivery row says so.
    pushes = wait_until(
        lambda: (
            len(found := [p for p in server.pushes() if p["data"]["dossier_id"] == dossier_id]) >= 5
            and found
        ),
        timeout=30,
        what="the journey's pushes",
    )
    assert [p["data"]["type"] for p in pushes] == [
        "dossier.accepted",
        "dossier.completed",
        "delivery.picked_up",
        "delivery.delivered",
        "dossier.handed_over",
    ]
    assert {p["token"] for p in pushes} == {pushes[0]["token"]}
    assert pushes[0]["token"].startswith("first-journey-")
    states = wait_until(
        lambda: (
            (
                rows := server.sql(
                    "SELECT d.state FROM notifications_delivery d JOIN notifications_device v "
                    "ON v.id = d.device_id WHERE v.token = ?",
                    (pushes[0]["token"],),
                )
            )
            and all(state == "delivered" for (state,) in rows)
            and rows
        ),
        timeout=30,
        what="every delivery row delivered",
    )
    assert len(states) == len(pushes)

    # The order was placed after the carrier's failures (a retried job), then delivered.
    log = httpx.get(f"{carrier_url}/_fake/log", timeout=5).json()["requests"]
    creates = [
        entry for entry in log if entry["method"] == "POST" and entry["path"] == "/v1/orders"
    ]
    assert [entry["status"] for entry in creates] == [503, 503, 503, 201]
    [(status, waybill)] = server.sql(
        "SELECT b.status, b.waybill FROM postal_deliverybooking b "
        "JOIN dossiers_dossier d ON d.id = b.dossier_id WHERE d.code = ?",
        (code,),
    )
    assert status == "delivered"
    assert waybill
    [(rating,)] = server.sql("SELECT satisfaction FROM dossiers_dossier WHERE code = ?", (code,))
    assert rating == 1


def _agency_post(
    server: EmbeddedServer, path: str, raw: bytes, content_type: str = "application/json"
) -> httpx.Response:
    stamp, event = str(int(time.time())), uuid.uuid4().hex
    return httpx.post(
        server.base_url + path,
        content=raw,
        headers={
            "Content-Type": content_type,
            "X-Agency-Key": AGENCY_KEY,
            "X-Timestamp": stamp,
            "X-Event-Id": event,
            "X-Signature": sign_agency(AGENCY_SECRET, "POST", path, stamp, event, raw),
        },
        timeout=15,
    )


def _agency_get(server: EmbeddedServer, path: str) -> httpx.Response:
    stamp, event = str(int(time.time())), uuid.uuid4().hex
    return httpx.get(
        server.base_url + path,
        headers={
            "X-Agency-Key": AGENCY_KEY,
            "X-Timestamp": stamp,
            "X-Event-Id": event,
            "X-Signature": sign_agency(AGENCY_SECRET, "GET", path, stamp, event, b""),
        },
        timeout=15,
    )


def test_quiet_hours_hold_a_push_on_the_embedded_default(server: EmbeddedServer) -> None:
    http = httpx.Client(base_url=server.base_url, timeout=15)
    device_id = uuid.uuid4().hex
    device = {"device_id": device_id, "device_name": "Pixel 8", "platform": "android"}
    phone = "+84987650124"
    started = http.post(
        "/api/v1/auth/register",
        json={"phone": phone, "full_name": "Lê Thị Hoa", "password": "Str0ng-pass!word-q"},
    )
    assert started.status_code == 202, started.text

    def code() -> str | None:
        path = server.outbox / "sms.jsonl"
        texts = (
            [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        )
        found = [re.search(r"\b(\d{6})\b", t["text"]) for t in texts if t["to"] == phone]
        return found[-1].group(1) if found and found[-1] else None

    verified = http.post(
        "/api/v1/auth/register/verify",
        json={"challenge_id": started.json()["challenge_id"], "code": wait_until(code, timeout=10)}
        | device,
    )
    assert verified.status_code == 201, verified.text
    http.headers["Authorization"] = f"Bearer {verified.json()['access_token']}"
    token = f"quiet-{device_id}"
    assert (
        http.post("/api/v1/devices", json={"token": token, "platform": "android"}).status_code
        == 201
    )
    now = dt.datetime.now(VIETNAM)
    quiet_end = (now + dt.timedelta(minutes=30)).replace(second=0, microsecond=0)
    preferences = http.patch(
        "/api/v1/notifications/preferences",
        json={
            "quiet_hours_enabled": True,
            "quiet_start": (now - dt.timedelta(minutes=30)).strftime("%H:%M"),
            "quiet_end": quiet_end.strftime("%H:%M"),
        },
    )
    assert preferences.status_code == 200, preferences.text
    found = http.get("/api/v1/catalogue/procedures", params={"q": "tình trạng hôn nhân"}).json()
    procedure = next(p["id"] for p in found["items"] if p["code"] == "1.004873")
    form = {
        "applicant_name": "Lê Thị Hoa",
        "applicant_citizen_id": "001190012345",
        "applicant_phone": phone,
        "birth_date": "1991-05-02",
        "residence_commune": "00004",
        "marital_status": "single",
        "purpose": "marriage",
        "pledge": True,
    }
    draft = http.post(
        "/api/v1/dossiers",
        json={"procedure_id": procedure, "form": form},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert draft.status_code == 201, draft.text
    dossier_id = draft.json()["id"]
    from tests.dossiers.attachments.samples import jpeg_bytes

    uploaded = http.post(
        f"/api/v1/dossiers/{dossier_id}/attachments",
        files={"file": ("IMG_0001.jpg", jpeg_bytes(), "image/jpeg")},
        data={"document_code": "divorce-paper"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert uploaded.status_code == 201, uploaded.text
    _pay_submission_fee(http, dossier_id)
    submitted = http.post(f"/api/v1/dossiers/{dossier_id}/submit")
    assert submitted.status_code == 200, submitted.text
    code = submitted.json()["code"]
    accepted = _agency_post(server, f"/api/v1/agency/dossiers/{code}/accept", b"{}")
    assert accepted.status_code == 200, accepted.text

    # The notification is made at once (the inbox has it), its push waits for 'quiet_end'.
    wait_until(
        lambda: any(
            n["type"] == "dossier.accepted"
            for n in http.get("/api/v1/notifications").json()["items"]
        ),
        timeout=20,
        what="the inbox entry",
    )

    def rows() -> list[tuple[Any, ...]]:
        return server.sql(
            "SELECT n.type, d.state FROM notifications_delivery d "
            "JOIN notifications_device v ON v.id = d.device_id "
            "JOIN notifications_notification n ON n.id = d.notification_id "
            "WHERE v.token = ? ORDER BY d.id",
            (token,),
        )

    assert wait_until(rows, timeout=20, what="the delivery row") == [
        ("dossier.accepted", "created")
    ]

    # Out of quiet hours, the next step's push goes at once; the held one still waits
    # (one job at a time, oldest first: an unscheduled push would have gone first).
    assert (
        http.patch(
            "/api/v1/notifications/preferences", json={"quiet_hours_enabled": False}
        ).status_code
        == 200
    )
    completed = _agency_post(
        server, f"/api/v1/agency/dossiers/{code}/complete", b"", "application/x-www-form-urlencoded"
    )
    assert completed.status_code == 200, completed.text
    [push] = wait_until(
        lambda: [p for p in server.pushes() if p["token"] == token],
        timeout=20,
        what="the push out of quiet hours",
    )
    assert push["data"]["type"] == "dossier.completed"
    # FCM has the push before the worker records its answer: wait for the record.
    expected = [("dossier.accepted", "created"), ("dossier.completed", "delivered")]
    wait_until(lambda: rows() == expected, timeout=20, what="the push recorded as delivered")
    http.close()

    # The agency's feed on SQLite: the dossier comes once its last change is older than
    # AGENCY_FEED_SETTLE_SECONDS (10 s), its moments written by the database as the
    # API writes them (RFC 3339, milliseconds, Z).
    def listed() -> dict[str, Any] | None:
        answer = _agency_get(server, "/api/v1/agency/feed")
        assert answer.status_code == 200, answer.text
        return next((item for item in answer.json()["items"] if item["code"] == code), None)

    item = wait_until(listed, timeout=40, what="the dossier in the agency's feed")
    moment = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
    assert moment.fullmatch(item["updated_at"]), item["updated_at"]
    assert moment.fullmatch(item["submitted_at"]), item["submitted_at"]
    # Its paper as the citizen's upload answered it (a UUID with its dashes, as the
    # schema says), and the signed link hands the stored photo to the agency.
    [paper] = item["attachments"]
    assert paper["id"] == uploaded.json()["id"], paper
    download = httpx.get(paper["download_url"], timeout=15)
    assert download.status_code == 200, download.text
    assert download.headers["Content-Type"] == paper["content_type"] == "image/jpeg"
    assert download.content.startswith(b"\xff\xd8")
    assert len(download.content) == paper["size"]


def _pay_submission_fee(http: httpx.Client, dossier_id: str) -> None:
    """The procedure's fee is due before submission: check out, press "Thanh toán" at
    the demo gateway `make run` started, wait for its callback to mark it paid."""
    checkout = http.post(
        f"/api/v1/payments/dossiers/{dossier_id}/checkout",
        json={},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert checkout.status_code in (200, 201), checkout.text
    payment = checkout.json()
    page = httpx.get(payment["checkout_url"], timeout=15)
    link = re.search(r"id=pay href='([^']+)'", page.text)
    assert link is not None, page.text
    pay_url = urllib.parse.urljoin(payment["checkout_url"], link.group(1).replace("&amp;", "&"))
    assert httpx.get(pay_url, timeout=15).status_code == 302
    wait_until(
        lambda: http.get(f"/api/v1/payments/{payment['id']}").json()["status"] == "paid",
        timeout=30,
        what="the payment marked paid by the gateway's callback",
    )
