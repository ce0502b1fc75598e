"""Sending SMS through the backend chosen by settings.SMS_BACKEND.

Backends: `file` (one JSON object per line in OUTBOX_DIR/sms.jsonl, for
development and tests), `console` (stdout), or a dotted path to a class with
`send(message) -> str` (the real gateway adapter). Texts are Vietnamese.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164
    text: str
    purpose: str  # e.g. "otp.register", "notice.phone_changed"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class SmsError(Exception):
    """The gateway refused or failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SmsBackend(Protocol):
    def send(self, message: SmsMessage) -> str:
        """Send, returning the provider's message id; raise SmsError on failure."""


class FileSmsBackend:
    """Appends each message to OUTBOX_DIR/sms.jsonl (development and tests)."""

    filename = "sms.jsonl"

    def send(self, message: SmsMessage) -> str:
        outbox = Path(settings.OUTBOX_DIR)
        outbox.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "id": message.id,
                "to": message.to,
                "text": message.text,
                "purpose": message.purpose,
                "sent_at": timezone.now().astimezone(dt.UTC).isoformat(),
            },
            ensure_ascii=False,
        )
        with (outbox / self.filename).open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # several processes may append at once
            handle.write(line + "\n")
        return message.id


class ConsoleSmsBackend:
    def send(self, message: SmsMessage) -> str:
        sys.stdout.write(f"[sms to {message.to}] {message.text}\n")
        return message.id


BACKENDS = {
    "file": "auth.sms.FileSmsBackend",
    "console": "auth.sms.ConsoleSmsBackend",
    "http": "auth.sms_gateway.HttpSmsBackend",
}


def get_backend() -> SmsBackend:
    path = BACKENDS.get(settings.SMS_BACKEND, settings.SMS_BACKEND)
    backend: SmsBackend = import_string(path)()
    return backend


def send_sms(to: str, text: str, *, purpose: str) -> str:
    """Send one SMS now; returns the provider's message id."""
    return get_backend().send(SmsMessage(to=to, text=text, purpose=purpose))


def read_outbox(outbox_dir: Path | None = None) -> list[dict[str, str]]:
    """The messages the file backend wrote (for tests and local development)."""
    path = Path(outbox_dir or settings.OUTBOX_DIR) / FileSmsBackend.filename
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
