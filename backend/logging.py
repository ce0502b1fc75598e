"""Structured JSON logs that never carry secrets or citizens' numbers."""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

SENSITIVE_KEYS = re.compile(
    r"^(code|.*(pass(word)?|secret|token|otp|authorization|cookie|signature|securehash"
    r"|recovery|totp|citizen_id|cccd|ticket).*)$",
    re.IGNORECASE,
)
# URL paths whose next segment is a credential: signed download links
# (dossiers.downloads.sign_download) and agency file links (dossiers.agency.api.file_token).
SECRET_PATH_SEGMENTS = ("attachment-downloads", "agency/files")
# Query and form parameters that carry a credential in a URL or a body: our WebSocket
# ticket, tokens, and the signature, credential and key parameters of signed URLs
# (S3/GCS presigned links: X-Amz-Signature, X-Amz-Credential, Signature, AWSAccessKeyId...).
_CREDENTIAL_PARAMETERS = (
    r"[\w.-]*?(?:password|passwd|secret|token|signature|credential|accesskeyid|googleaccessid"
    r"|access_?key|api_?key|key_?id|securehash|hmac|checksum)"
    r"|otp|code|refresh|access|ticket|sig|key"
)
# A 14-digit run shaped yyyyMMddHHmmss is a time (VNPay's vnp_CreateDate, vnp_PayDate),
# not a personal number: the long-digit rule below leaves it alone.
_COMPACT_TIME = re.compile(
    r"20\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:[01]\d|2[0-3])[0-5]\d[0-5]\d"
)


def _mask_spaced_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(2))
    if len(digits) not in (9, 10):  # a mobile (9 after the prefix) or a landline (10)
        return match.group(0)
    return f"{match.group(1)}******{digits[-3:]}"


def _mask_long_number(match: re.Match[str]) -> str:
    name, number = match.group(1), match.group(2)
    if name or (len(number) == 14 and _COMPACT_TIME.fullmatch(number)):
        return match.group(0)
    return f"******{number[-3:]}"


_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # Bearer and other credentials in free text.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=:-]+"), r"\1 [redacted]"),
    # The token segment of a signed link's path, in request lines and "Not Found: ..." alike.
    (
        re.compile(r"(/(?:" + "|".join(SECRET_PATH_SEGMENTS) + r")/)[^/?#\s\"']+"),
        r"\1[redacted]",
    ),
    # Anything shaped like a django.core.signing value (payload[:timestamp]:signature,
    # the signature being 43 URL-safe base64 characters), wherever it appears.
    (
        re.compile(r"(?<![\w.:-])\.?[\w-]+(?::[\w-]+)?:[\w-]{43}(?![\w-])"),
        "[redacted]",
    ),
    # key=value / "key": "value" pairs with a sensitive key.
    (
        re.compile(
            r"(?i)(?<![\w-])(" + _CREDENTIAL_PARAMETERS + r")(\"?\s*[:=]\s*\"?)([^\s\"&,;]+)"
        ),
        r"\1\2[redacted]",
    ),
    # Search terms (the admin's ?q= finds people by name, phone, citizen ID, address),
    # also inside the admin's `_changelist_filters=q%3D...` (its value ends at %26).
    (re.compile(r"(?<![\w%-])q=[^\s\"&#]*"), "q=[redacted]"),
    (re.compile(r"(?i)(?:(?<![\w%-])|(?<=%26))q%3D(?:(?!%26)[^\s\"&#])*"), "q%3D[redacted]"),
    # Citizen ID numbers (12 digits).
    (re.compile(r"(?<![\w-])\d{12}(?![\w-])"), "[id-redacted]"),
    # Vietnamese phone numbers: keep the last 3 digits for support.
    (re.compile(r"(?<![\d+])(\+?84|0)(\d{6})(\d{3})(?!\d)"), r"\1******\3"),
    # ...also written in groups: "0912 345 678", "+84 912 345 678", "024 3825 1234".
    (
        re.compile(r"(?<![\w+*.-])(\+?84 ?|0)(\d{2,4}(?: \d{2,4}){1,3})(?![\w-]|\.\d)"),
        _mask_spaced_phone,
    ),
    # Any other run of 9 or more digits (a phone without its prefix, an account or
    # card number): keep the last 3 digits. Not the value of an amount, date or time
    # parameter (vnp_Amount is in VND x 100).
    (
        re.compile(
            r"(?i)(?<![\w*-])([\w.]*(?:amount|date|time|timestamp)(?:=|\"\s*:\s*\"?))?"
            r"(\d{9,})(?![\w-])"
        ),
        _mask_long_number,
    ),
    # A lone 6-digit number is as likely an OTP as anything else.
    (re.compile(r"(?<![\w-])\d{6}(?![\w-])"), "[redacted]"),
]

_STANDARD_ATTRS = set(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
}


def redact_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    if SENSITIVE_KEYS.search(key):
        return "[redacted]"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else is written as its text (e.g. django.request's `request` extra,
    # "<ASGIRequest: GET '/api/v1/agency/files/<token>'>"): redact that text.
    return redact_text(str(value))


def _ids(arg: object) -> str | None:
    """An integer, or a non-empty list of integers (written "1, 2, 3"), as text."""
    if type(arg) is int:
        return str(arg)
    if isinstance(arg, list) and arg and all(type(item) is int for item in arg):
        return ", ".join(str(item) for item in arg)
    return None


def _redacted_message(record: logging.LogRecord) -> str:
    """The record's message, redacted, but its integer arguments as they were.

    Integers are the ids and counts the code logs (a push delivery's id, a row
    count), never a phone, citizen ID or code, which are text here (leading zeros),
    as integer extra fields are kept (`redact_value`); a list of integers is written
    "1, 2, 3". Without this, a delivery's id
    between 100000 and 999999 read as a one-time code and one of nine digits or more
    as a phone. Each integer `%s` argument stands in the text as a mark no pattern
    matches while the text around it is redacted; anything else is formatted and
    redacted as a whole."""
    args = record.args
    if isinstance(args, tuple) and any(_ids(arg) is not None for arg in args):
        kept: dict[str, str] = {}
        held = []
        for arg in args:
            ids = _ids(arg)
            if ids is not None:
                mark = f"\x00{chr(0xE000 + len(kept))}\x00"
                kept[mark] = ids
                arg = mark
            held.append(arg)
        try:
            text = redact_text(str(record.msg) % tuple(held))
        except (TypeError, ValueError):  # e.g. %d given a mark: as a whole below
            pass
        else:
            for mark, value in kept.items():
                text = text.replace(mark, value)
            return text
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        message = str(record.msg)
    return redact_text(message)


class RedactingFilter(logging.Filter):
    """Rewrites each record so that no secret or personal number reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redacted_message(record)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS:
                record.__dict__[key] = redact_value(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_text:
            payload["exception"] = record.exc_text
        elif record.exc_info:
            payload["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False, default=str)
