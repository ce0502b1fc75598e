"""Sending SMS through the backend chosen by settings.SMS_BACKEND.

Backends: `file` (one JSON object per line in OUTBOX_DIR/sms.jsonl, for
development and tests), `console` (stdout), or a dotted path to a class with
`send(message) -> str` (the real gateway adapter).

Texts are in the reader's language (`vi`, `en`) and go out without Vietnamese
diacritics (`plain_text`, applied by `send_sms` to every SMS): with them, a
message needs UCS-2 (70 characters a segment instead of GSM-7's 160, so it costs
two or three times more) and some older phones and networks garble it;
brand-name SMS in Vietnam are written unaccented. Each text fits one GSM-7
segment (tests/accounts/test_sms_texts.py) and a code comes first.

A text that carries a code (`CodeSmsTemplate`) can end with the lines that let the
phone fill the code in by itself, each turned on by a setting (empty: off):
- `SMS_ANDROID_APP_HASH`: the 11-character hash of the Android app, on a line of
  its own. Google Play services hands a message holding it to the app through the
  SMS Retriever API, no SMS permission needed. Google's current rules
  (developers.google.com/identity/sms-retriever/verify): the message holds the
  code and the hash and is no longer than 140 bytes; the `<#>` prefix older pages
  asked for is gone (it would also push the code off the start).
- `SMS_WEB_OTP_DOMAIN`: the last line `@dichvucong.gov.vn #123456` of an
  origin-bound one-time code message (wicg.github.io/sms-one-time-codes): Chrome's
  WebOTP and iOS/Safari AutoFill offer the code only on that site or an app
  associated with it. It must be the message's last line, so with both the hash
  line comes just before it.
With both at their longest (`WEB_OTP_DOMAIN_MAX_LENGTH`) every code text still
fits one segment and 140 bytes (tests/accounts/test_sms_texts.py); the system
check `check_autofill_settings` refuses a malformed value at start-up.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import re
import sys
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.module_loading import import_string

# GSM 03.38: the default alphabet (one septet each; ESC left out) and its extension
# table (two septets each: ESC and the character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_SEGMENT = 160  # septets in a single-part message


def plain_text(text: str) -> str:
    """`text` without diacritics: "Mã xác thực Đăng ký" -> "Ma xac thuc Dang ky".

    Vietnamese letters decompose (NFD) into a base letter and combining marks,
    which are dropped; đ and Đ are letters of their own and map to d and D."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return unicodedata.normalize("NFC", stripped)  # what is left of other scripts


def gsm7_septets(text: str) -> int | None:
    """How many GSM-7 septets `text` takes, or None when GSM-7 cannot carry it."""
    septets = 0
    for char in text:
        if char in GSM7_BASIC:
            septets += 1
        elif char in GSM7_EXTENSION:
            septets += 2
        else:
            return None
    return septets


@dataclass(frozen=True)
class SmsTemplate:
    """An SMS text from the gettext catalogue with `str.format` placeholders.

    `format` renders it in the active language: call it where the reader's
    language is active (the request's for a code, `translation.override` with
    the account's `language` for a notice), not in a job. Every template is
    listed in `SMS_TEMPLATES`, so a test checks each fits one segment.
    """

    text: Promise  # gettext_lazy

    def __post_init__(self) -> None:
        SMS_TEMPLATES.append(self)

    def format(self, **values: object) -> str:
        return str(self.text).format(**values)


SMS_TEMPLATES: list[SmsTemplate] = []

# The SMS Retriever's limit on the whole message. Google does not say in which
# encoding: read as one byte a character (stricter than the 140 octets a GSM-7
# segment packs its 160 septets into), which the unaccented texts are.
SMS_RETRIEVER_MAX_BYTES = 140
# Base64 of a SHA-256, cut to 11 characters (no padding).
ANDROID_APP_HASH = re.compile(r"[A-Za-z0-9+/]{11}")
# A host name in lowercase (labels of letters, digits and inner hyphens); the cap
# keeps every code text with both auto-fill lines within 140 bytes.
WEB_OTP_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]")
WEB_OTP_DOMAIN_MAX_LENGTH = 24


def autofill_lines(code: str) -> list[str]:
    """The lines that let a phone fill `code` in, as the settings turn them on: the
    Android app's hash, then the origin-bound line, which must come last."""
    lines = []
    if settings.SMS_ANDROID_APP_HASH:
        lines.append(settings.SMS_ANDROID_APP_HASH)
    if settings.SMS_WEB_OTP_DOMAIN:
        lines.append(f"@{settings.SMS_WEB_OTP_DOMAIN} #{code}")
    return lines


@dataclass(frozen=True)
class CodeSmsTemplate(SmsTemplate):
    """A text that carries a one-time code (`{code}`, first), followed by the
    auto-fill lines the settings turn on (`autofill_lines`); notices never get them."""

    def format(self, **values: object) -> str:
        return "\n".join([super().format(**values), *autofill_lines(str(values["code"]))])


def check_autofill_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """System check (registered in auth/apps.py): the auto-fill settings are well formed."""
    errors: list[checks.CheckMessage] = []
    app_hash = settings.SMS_ANDROID_APP_HASH
    if app_hash and not ANDROID_APP_HASH.fullmatch(app_hash):
        errors.append(
            checks.Error(
                f"SMS_ANDROID_APP_HASH must be the 11-character SMS Retriever hash of the "
                f"Android app (letters, digits, + and /), not {app_hash!r}.",
                hint="Compute it from the package name and the signing certificate "
                "(mobile_api_docs/accounts.md, 'Filling the code in by itself'), or leave it "
                "empty.",
                id="accounts.E001",
            )
        )
    domain = settings.SMS_WEB_OTP_DOMAIN
    if domain and not (
        len(domain) <= WEB_OTP_DOMAIN_MAX_LENGTH and WEB_OTP_DOMAIN.fullmatch(domain)
    ):
        errors.append(
            checks.Error(
                f"SMS_WEB_OTP_DOMAIN must be a host name in lowercase such as "
                f"dichvucong.gov.vn, without scheme, port or path, of at most "
                f"{WEB_OTP_DOMAIN_MAX_LENGTH} characters (the most that keeps every code "
                f"SMS within 140 characters), not {domain!r}.",
                hint="The site, or the iOS app's associated domain, where codes are "
                "typed in; leave it empty to turn the Web OTP line off.",
                id="accounts.E002",
            )
        )
    return errors


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
    """Send one SMS now (without diacritics, see the module's docstring); returns the
    provider's message id."""
    return get_backend().send(SmsMessage(to=to, text=plain_text(text), purpose=purpose))


def read_outbox(outbox_dir: Path | None = None) -> list[dict[str, str]]:
    """The messages the file backend wrote (for tests and local development)."""
    path = Path(outbox_dir or settings.OUTBOX_DIR) / FileSmsBackend.filename
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
