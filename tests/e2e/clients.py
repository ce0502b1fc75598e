"""Clients of the running stack, as its real callers talk to it: the mobile app
(plain HTTP + WebSocket), an agency's back-office system (signed requests), the
postal carrier (signed webhooks) and the citizen's browser at the payment gateway."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
import uuid
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from dossiers.agency.signing import sign as sign_agency
from fakes.harness import wait_until
from postal.webhooks import sign as sign_webhook
from tests.e2e.stack import WEBHOOK_SECRET, Stack

PASSWORD = "Str0ng-pass!word-e2e"


class MobileApp:
    """What the citizen's phone does: JSON over HTTP with a bearer token."""

    def __init__(
        self, stack: Stack, device_id: str | None = None, base_url: str | None = None
    ) -> None:
        self.stack = stack
        self.base_url = base_url or stack.base_url
        self.http = httpx.Client(base_url=self.base_url, timeout=15)
        self.device_id = device_id or uuid.uuid4().hex
        self.token: str | None = None

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http")

    def use(self, base_url: str) -> None:
        """Talk to another web process from now on (the load balancer's next host)."""
        self.http.close()
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=15)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept-Language": "vi"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = self.headers(kwargs.pop("headers", None))
        if "files" in kwargs or "data" in kwargs:
            return self.http.post(path, headers=headers, **kwargs)
        return self.http.post(path, json=body, headers=headers, **kwargs)

    def patch(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.patch(path, json=body, headers=self.headers())

    def device(self) -> dict[str, str]:
        return {
            "device_id": self.device_id,
            "device_name": "Pixel 8",
            "platform": "android",
            "app_version": "2.0.0",
        }

    def close(self) -> None:
        self.http.close()


class Agency:
    """An agency's back-office system with a key made by an operator."""

    def __init__(self, stack: Stack, agency_code: str, base_url: str | None = None) -> None:
        out = stack.python(
            "from dossiers.agency.credentials import create_credential\n"
            "from dossiers.models import Agency\n"
            f"c, s = create_credential(Agency.objects.get(code={agency_code!r}), 'e2e')\n"
            "print(c.key_id + ' ' + s)\n"
        )
        self.key_id, self.secret = out.strip().splitlines()[-1].split(" ")
        self.http = httpx.Client(base_url=base_url or stack.base_url, timeout=15)

    def post(
        self, path: str, body: Any = None, *, files: dict[str, Any] | None = None
    ) -> httpx.Response:
        if files is not None:
            request = self.http.build_request("POST", path, files=files, data=body or {})
            raw = request.read()
            content_type = request.headers["Content-Type"]
        else:
            raw = json.dumps(body or {}).encode()
            content_type = "application/json"
        stamp = str(int(time.time()))
        event = uuid.uuid4().hex
        headers = {
            "Content-Type": content_type,
            "X-Agency-Key": self.key_id,
            "X-Timestamp": stamp,
            "X-Event-Id": event,
            "X-Signature": sign_agency(self.secret, "POST", path, stamp, event, raw),
        }
        return self.http.post(path, content=raw, headers=headers)

    def get(self, path: str) -> httpx.Response:
        stamp = str(int(time.time()))
        event = uuid.uuid4().hex
        headers = {
            "X-Agency-Key": self.key_id,
            "X-Timestamp": stamp,
            "X-Event-Id": event,
            "X-Signature": sign_agency(self.secret, "GET", path, stamp, event, b""),
        }
        return self.http.get(path, headers=headers)

    def close(self) -> None:
        self.http.close()


class Carrier:
    """The postal carrier's webhook sender."""

    def __init__(self, stack: Stack) -> None:
        self.http = httpx.Client(base_url=stack.base_url, timeout=15)
        self.sent = 0

    def report(self, waybill: str, order_number: str, status: str) -> httpx.Response:
        self.sent += 1
        body = {
            "message_id": f"e2e-{uuid.uuid4().hex}",
            "order_number": order_number,
            "waybill": waybill,
            "status": status,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "location": "Bưu cục Ba Đình",
        }
        raw = json.dumps(body).encode()
        stamp = str(int(time.time()))
        return self.http.post(
            "/api/v1/postal/carriers/vnpost/webhook",
            content=raw,
            headers={
                "Content-Type": "application/json",
                "X-Carrier-Timestamp": stamp,
                "X-Carrier-Signature": sign_webhook(WEBHOOK_SECRET, stamp, raw),
            },
        )

    def close(self) -> None:
        self.http.close()


class EventStream:
    """A real WebSocket client on /ws/v1/events, read by a thread into `frames`.

    `reconnect()` does what the guide tells apps to do: a new ticket, then the
    last event id seen.
    """

    def __init__(self, app: MobileApp) -> None:
        self.app = app
        self.frames: list[dict[str, Any]] = []
        self.tickets: list[str] = []  # every ticket used, to check the logs never show one
        self.closed: list[int | None] = []
        self._lock = threading.Lock()
        self._socket: ClientConnection | None = None
        self._thread: threading.Thread | None = None

    def ticket(self) -> httpx.Response:
        return self.app.post("/api/v1/realtime/ticket", {})

    def open(self, last_event_id: int | None = None) -> None:
        self._socket = None
        response = self.ticket()
        assert response.status_code == 201, response.text
        self.tickets.append(response.json()["ticket"])
        query = f"ticket={self.tickets[-1]}"
        if last_event_id is not None:
            query += f"&last_event_id={last_event_id}"
        url = f"{self.app.ws_url}/ws/v1/events?{query}"
        connected = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._read, args=(url, connected, failure), daemon=True
        )
        self._thread.start()
        connected.wait(timeout=15)
        if failure:
            raise failure[0]
        assert self._socket is not None, "the WebSocket handshake did not finish"

    def _read(self, url: str, connected: threading.Event, failure: list[BaseException]) -> None:
        try:
            with connect(url, open_timeout=10, close_timeout=2) as socket:
                self._socket = socket
                connected.set()
                try:
                    for message in socket:
                        with self._lock:
                            self.frames.append(json.loads(message))
                except ConnectionClosed:
                    pass
                with self._lock:
                    self.closed.append(socket.close_code)
        except Exception as exc:  # handshake refused: reported to open()
            failure.append(exc)
            connected.set()

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [frame for frame in self.frames if frame.get("type") == "event"]

    def last_event_id(self) -> int | None:
        events = self.events()
        return int(events[-1]["id"]) if events else None

    def wait_for(self, event_type: str, timeout: float = 20) -> dict[str, Any]:
        return wait_until(
            lambda: next((e for e in self.events() if e["event_type"] == event_type), None),
            timeout=timeout,
            what=f"{event_type} on the socket",
        )

    def reconnect(self, timeout: float = 30) -> int:
        """What the guide tells apps to do: on failure wait and try again, each time
        with a new ticket and the last event id seen. Returns the failed tries."""
        self.close()
        failures: list[str] = []

        def attempt() -> bool:
            try:
                self.open(last_event_id=self.last_event_id())
            except (AssertionError, OSError, InvalidStatus) as exc:
                failures.append(type(exc).__name__)
                return False
            return True

        wait_until(attempt, timeout=timeout, interval=0.5, what="a reconnected socket")
        return len(failures)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def sms_code(stack: Stack, phone: str, already: int = 0) -> str:
    """The newest code the gateway was asked to text to `phone`."""
    assert stack.sms is not None
    number = phone.lstrip("+")

    def texts() -> list[dict[str, Any]]:
        return [r for r in stack.sms.messages if r.get("Phone") == number]

    wait_until(lambda: len(texts()) > already, timeout=10, what="an SMS")
    match = re.search(r"\b(\d{6})\b", texts()[-1]["Content"])
    assert match is not None, texts()[-1]
    return match.group(1)


def pushes_to(stack: Stack, token: str) -> list[dict[str, Any]]:
    return [m for m in stack.fcm.accepted() if m["token"] == token]


def wait_for_pushes(stack: Stack, token: str, count: int) -> list[dict[str, Any]]:
    wait_until(lambda: len(pushes_to(stack, token)) >= count, timeout=30, what=f"{count} pushes")
    return pushes_to(stack, token)


def sign_up(stack: Stack, phone: str) -> MobileApp:
    """Register, read the texted code from the gateway, verify; then log in again."""
    app = MobileApp(stack)
    started = app.post(
        "/api/v1/auth/register",
        {"phone": phone, "full_name": "Trần Văn Minh", "password": PASSWORD},
        headers={"Idempotency-Key": f"register-{app.device_id}"},
    )
    assert started.status_code == 202, started.text
    verified = app.post(
        "/api/v1/auth/register/verify",
        {"challenge_id": started.json()["challenge_id"], "code": sms_code(stack, phone)}
        | app.device(),
    )
    assert verified.status_code == 201, verified.text
    device_key = verified.json()["device_key"]
    login = app.post(
        "/api/v1/auth/login",
        {"phone": phone, "password": PASSWORD, "device_key": device_key} | app.device(),
    )
    assert login.status_code == 200, login.text
    assert login.json()["second_factor_required"] is False
    app.token = login.json()["access_token"]
    assert app.get("/api/v1/auth/me").json()["phone"] == phone
    return app


PROCEDURE_CODE = "1.004873"  # marital status certificate, UBND phường Ba Đình (demo)
AGENCY_CODE = "HN-BADINH"
BA_DINH = "00004"
MARITAL_FORM = {
    "applicant_name": "Trần Văn Minh",
    "applicant_citizen_id": "001090012345",
    "applicant_phone": "0987650001",
    "birth_date": "1990-03-12",
    "residence_commune": BA_DINH,
    "marital_status": "single",
    "purpose": "marriage",
    "pledge": True,
}


def procedure_id(app: MobileApp) -> int:
    found = app.get("/api/v1/catalogue/procedures", params={"q": "tình trạng hôn nhân"}).json()
    return int(next(p["id"] for p in found["items"] if p["code"] == PROCEDURE_CODE))


def draft(app: MobileApp) -> str:
    response = app.post(
        "/api/v1/dossiers",
        {"procedure_id": procedure_id(app), "form": MARITAL_FORM},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def pay_at_gateway(app: MobileApp, dossier_id: str, *, gateway: str = "vnpay") -> dict[str, Any]:
    """Checkout, then the citizen's browser at the gateway: open the page, press pay,
    follow the redirect back to our return URL (which sends the app's deep link).
    The gateway's server-to-server callback goes its own way. Returns the payment
    as the checkout answered it, with `deep_link`."""
    checkout = app.post(
        f"/api/v1/payments/dossiers/{dossier_id}/checkout",
        {"gateway": gateway},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert checkout.status_code in (200, 201), checkout.text
    payment = dict(checkout.json())
    with httpx.Client(timeout=15) as browser:
        page = browser.get(payment["checkout_url"])
        assert page.status_code == 200, page.text
        link = re.search(r"id=pay href='([^']+)'", page.text)
        assert link is not None, page.text
        pay_url = urllib.parse.urljoin(payment["checkout_url"], link.group(1).replace("&amp;", "&"))
        paid = browser.get(pay_url)
        assert paid.status_code == 302, paid.text
        back = browser.get(paid.headers["Location"])  # our return route
        assert back.status_code == 302, back.text
        payment["deep_link"] = back.headers["Location"]
    return payment


def wait_paid(app: MobileApp, payment_id: str, timeout: float = 30) -> dict[str, Any]:
    return dict(
        wait_until(
            lambda: (
                (p := app.get(f"/api/v1/payments/{payment_id}").json())["status"] == "paid" and p
            ),
            timeout=timeout,
            what=f"payment {payment_id} paid",
        )
    )


def pay_submission_fee(app: MobileApp, dossier_id: str) -> dict[str, Any]:
    """The marital-status procedure's fee is paid when submitting (fee_timing before)."""
    due = app.get(f"/api/v1/payments/dossiers/{dossier_id}/due")
    assert due.status_code == 200, due.text
    assert due.json()["source"] == "submission"
    payment = pay_at_gateway(app, dossier_id)
    return wait_paid(app, payment["id"])


def submitted(app: MobileApp) -> tuple[str, str]:
    """A new dossier, its fee paid, submitted: (id, code)."""
    dossier_id = draft(app)
    pay_submission_fee(app, dossier_id)
    response = app.post(f"/api/v1/dossiers/{dossier_id}/submit")
    assert response.status_code == 200, response.text
    return dossier_id, str(response.json()["code"])


def register_device(app: MobileApp, token: str) -> None:
    response = app.post("/api/v1/devices", {"token": token, "platform": "android"})
    assert response.status_code == 201, response.text


def second_device(stack: Stack, phone: str) -> MobileApp:
    """The same citizen signing in on another phone: password, then a texted code."""
    assert stack.sms is not None
    app = MobileApp(stack)
    before = len([r for r in stack.sms.messages if r.get("Phone") == phone.lstrip("+")])
    login = app.post("/api/v1/auth/login", {"phone": phone, "password": PASSWORD} | app.device())
    assert login.status_code == 200, login.text
    assert login.json()["second_factor_required"] is True
    verified = app.post(
        "/api/v1/auth/login/verify",
        {
            "challenge_id": login.json()["challenge_id"],
            "method": "sms_otp",
            "code": sms_code(stack, phone, already=before),
        },
    )
    assert verified.status_code == 200, verified.text
    app.token = verified.json()["access_token"]
    return app
