"""The push gateway: FCM HTTP v1 (firebase-admin's messages, our async transport), or
a development outbox.

`settings.PUSH_BACKEND` picks it: `fcm` (needs FCM_CREDENTIALS_FILE or
GOOGLE_APPLICATION_CREDENTIALS), `file` (one FCM v1 request body per line in
OUTBOX_DIR/push.jsonl), `console` (stdout), or a dotted path to a class with
`send(pushes) -> results`. Production refuses `file` and `console`.

A gateway never raises for a failed message: each push gets a `SendResult`, and
the delivery code decides what the answer means for the row and the token.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import fcntl
import json
import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import firebase_admin
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string
from firebase_admin import credentials, exceptions, messaging

from notifications.fcm_sender import Slots, sender_for
from notifications.payload import Push, wire_message

logger = logging.getLogger(__name__)

# The answers that mean "this token is dead": the token is deactivated. Nothing else is.
TOKEN_IS_DEAD = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
# Answers that trying again cannot change. INVALID_ARGUMENT is a bug in our message:
# the delivery fails and the error is logged, but the token stays.
PERMANENT = TOKEN_IS_DEAD | {"INVALID_ARGUMENT", "THIRD_PARTY_AUTH_ERROR"}
THROTTLED = frozenset({"QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"})


@dataclass(frozen=True)
class SendResult:
    message_id: str = ""
    error_code: str = ""
    error_message: str = ""
    http_status: int | None = None
    retry_after: float | None = None  # seconds, from the Retry-After header

    @property
    def ok(self) -> bool:
        return bool(self.message_id) and not self.error_code

    @property
    def permanent(self) -> bool:
        return self.error_code in PERMANENT

    @property
    def throttled(self) -> bool:
        return self.error_code in THROTTLED

    @property
    def token_is_dead(self) -> bool:
        return self.error_code in TOKEN_IS_DEAD


class PushGateway(Protocol):
    def send(self, pushes: list[Push]) -> list[SendResult]:
        """One result per push, in order."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (moment - timezone.now()).total_seconds())


def classify(error: Exception) -> SendResult:
    """Turn firebase-admin's exception for one message into a result."""
    code = "UNKNOWN"
    if isinstance(error, messaging.UnregisteredError):
        code = "UNREGISTERED"
    elif isinstance(error, messaging.SenderIdMismatchError):
        code = "SENDER_ID_MISMATCH"
    elif isinstance(error, messaging.QuotaExceededError):
        code = "QUOTA_EXCEEDED"
    elif isinstance(error, messaging.ThirdPartyAuthError):
        code = "THIRD_PARTY_AUTH_ERROR"
    elif isinstance(error, exceptions.FirebaseError):
        code = str(error.code or "UNKNOWN").upper()
    elif isinstance(error, ValueError):
        code = "INVALID_ARGUMENT"
    response = getattr(error, "http_response", None)
    status = getattr(response, "status_code", None)
    headers = getattr(response, "headers", None) or {}
    return SendResult(
        error_code=code,
        error_message=str(error)[:500],
        http_status=status,
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )


# --- FCM -------------------------------------------------------------------------

_apps: dict[tuple[str, str, str, int], firebase_admin.App] = {}
_apps_lock = threading.Lock()


def firebase_app() -> firebase_admin.App:
    """The firebase-admin app for the configured credentials (one per configuration)."""
    path = settings.FCM_CREDENTIALS_FILE
    if not path:
        raise ImproperlyConfigured(
            "PUSH_BACKEND=fcm needs FCM_CREDENTIALS_FILE or GOOGLE_APPLICATION_CREDENTIALS."
        )
    key = (path, settings.FCM_PROJECT_ID, settings.FCM_API_BASE, settings.FCM_TIMEOUT_SECONDS)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            options: dict[str, Any] = {"httpTimeout": settings.FCM_TIMEOUT_SECONDS}
            if settings.FCM_PROJECT_ID:
                options["projectId"] = settings.FCM_PROJECT_ID
            app = firebase_admin.initialize_app(
                credentials.Certificate(path), options, name=f"push-{uuid.uuid4().hex}"
            )
            _apps[key] = app
    return app


def fcm_url(app: firebase_admin.App) -> str:
    """The FCM v1 send URL of `app` (FCM_API_BASE, e.g. the fake server, else Google's)."""
    service = messaging._get_messaging_service(app)
    if settings.FCM_API_BASE:
        base = settings.FCM_API_BASE.rstrip("/")
        return f"{base}/v1/projects/{service._project_id}/messages:send"
    url: str = service._fcm_url
    return url


class FcmGateway:
    """Sends through the process's asynchronous sender (notifications/fcm_sender.py):
    firebase-admin builds, validates and encodes each message and maps each error
    answer; aiohttp carries them, FCM_CONCURRENCY requests of this call in flight at
    a time and FCM_MAX_CONNECTIONS connections for the whole process.
    """

    def __init__(self) -> None:
        self.app = firebase_app()
        key = (
            settings.FCM_CREDENTIALS_FILE,
            settings.FCM_PROJECT_ID,
            settings.FCM_API_BASE,
            settings.FCM_TIMEOUT_SECONDS,
            settings.FCM_MAX_CONNECTIONS,
        )
        self.sender = sender_for(
            key,
            self.app,
            fcm_url(self.app),
            timeout=settings.FCM_TIMEOUT_SECONDS,
            max_connections=settings.FCM_MAX_CONNECTIONS,
        )

    def send(self, pushes: list[Push]) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(pushes)
        for answers in self.send_as_answered(pushes):
            for index, result in answers:
                results[index] = result
        return [result or SendResult(error_code="UNKNOWN") for result in results]

    @property
    def max_in_flight(self) -> int:
        """The most requests `reserve` gives room for at once (FCM_MAX_CONNECTIONS)."""
        return self.sender.in_flight.limit

    def reserve(self, wanted: int, timeout: float) -> Slots | None:
        """Room for up to `wanted` requests (FCM_MAX_CONNECTIONS at most) among those
        the process has out, once there is room for a quarter of the connections (or
        `wanted`, or one), or None when there was not within `timeout` seconds: a send
        job marks only as many rows `sending` as there is room for, so
        their requests leave at once; each slot comes back when its request is
        answered (`send_as_answered` with the slots, delivery.py)."""
        return self.sender.in_flight.take(wanted, timeout)

    def send_as_answered(
        self, pushes: list[Push], slots: Slots | None = None
    ) -> Iterator[list[tuple[int, SendResult]]]:
        """One result per push, handed over as FCM answers: lists of (index, result),
        each with the answers of about FCM_RECORD_GATHER_MS (see delivery.py). With
        `slots` (`reserve`), each request gives its slot back as soon as it is answered;
        a message the encoder refuses gives its slot back at once."""
        refused: list[tuple[int, SendResult]] = []
        ready: list[tuple[int, dict[str, Any]]] = []
        for index, push in enumerate(pushes):
            try:
                # The encoder validates; one bad message must not sink the batch.
                ready.append((index, wire_message(push)))
            except ValueError as exc:
                logger.error("push message %s is invalid: %s", index, exc)
                refused.append((index, classify(exc)))
        if refused:
            if slots is not None:
                slots.give_back(len(refused))  # those requests will never be made
            yield refused
        unanswered = set(range(len(ready)))
        try:
            for responses in self.sender.send_each_as_answered(
                [message for _, message in ready],
                concurrency=settings.FCM_CONCURRENCY,
                gather_seconds=settings.FCM_RECORD_GATHER_MS / 1000,
                slots=slots,
            ):
                unanswered.difference_update(position for position, _ in responses)
                yield [
                    (
                        ready[position][0],
                        SendResult(message_id=response.message_id)
                        if response.success
                        else classify(response.exception),
                    )
                    for position, response in responses
                ]
        except (exceptions.FirebaseError, ValueError) as exc:
            logger.warning("FCM batch failed: %s", type(exc).__name__)
            failed = classify(exc)
            if unanswered:
                yield [(ready[position][0], failed) for position in sorted(unanswered)]


# --- Development outboxes --------------------------------------------------------------


class FilePushGateway:
    """Appends each FCM v1 request body to OUTBOX_DIR/push.jsonl (development, tests)."""

    filename = "push.jsonl"

    def send(self, pushes: list[Push]) -> list[SendResult]:
        outbox = Path(settings.OUTBOX_DIR)
        outbox.mkdir(parents=True, exist_ok=True)
        results = []
        lines = []
        for push in pushes:
            name = f"projects/local/messages/{uuid.uuid4().hex}"
            lines.append(
                json.dumps(
                    {
                        "name": name,
                        "message": wire_message(push),
                        "sent_at": timezone.now().astimezone(dt.UTC).isoformat(),
                    },
                    ensure_ascii=False,
                )
            )
            results.append(SendResult(message_id=name))
        with (outbox / self.filename).open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # several workers may append at once
            handle.write("".join(line + "\n" for line in lines))
        return results


class ConsolePushGateway:
    def send(self, pushes: list[Push]) -> list[SendResult]:
        results = []
        for push in pushes:
            sys.stdout.write(f"[push …{push.token[-6:]}] {push.title}: {push.body}\n")
            results.append(SendResult(message_id=f"projects/local/messages/{uuid.uuid4().hex}"))
        return results


BACKENDS = {
    "fcm": "notifications.fcm.FcmGateway",
    "file": "notifications.fcm.FilePushGateway",
    "console": "notifications.fcm.ConsolePushGateway",
}


def warm_up() -> None:
    """Build this process's FCM client before the first push needs it (settings.
    WORKER_WARM_UP): firebase-admin's app and messaging service, the sender's event loop
    and aiohttp session. Nothing is sent and no token is fetched."""
    if settings.PUSH_BACKEND == "fcm":
        FcmGateway()


def get_gateway() -> PushGateway:
    path = BACKENDS.get(settings.PUSH_BACKEND, settings.PUSH_BACKEND)
    gateway: PushGateway = import_string(path)()
    return gateway


def read_push_outbox(outbox_dir: Path | None = None) -> list[dict[str, Any]]:
    """The messages the file backend wrote (for tests and local development)."""
    path = Path(outbox_dir or settings.OUTBOX_DIR) / FilePushGateway.filename
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
