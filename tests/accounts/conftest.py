"""Helpers for account tests: fast password hashing, reading codes from the SMS outbox."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from auth.sms import read_outbox
from tests.conftest import ApiClient

PASSWORD = "Str0ng-pass!word"
CODE_RE = re.compile(r"^(\d{6}) ")


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    # PBKDF2's cost is the point in production; here it only slows the suite down.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sms_to(phone: str) -> list[dict[str, str]]:
    return [message for message in read_outbox() if message["to"] == phone]


def last_code(phone: str) -> str:
    """The code of the last OTP texted to `phone`."""
    codes = [
        match.group(1)
        for message in sms_to(phone)
        if message["purpose"].startswith("otp.") and (match := CODE_RE.match(message["text"]))
    ]
    assert codes, f"no code was texted to {phone}"
    return codes[-1]


def device(device_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "device_id": device_id or uuid.uuid4().hex,
        "device_name": extra.pop("device_name", "Pixel 8"),
        "platform": extra.pop("platform", "android"),
        "app_version": extra.pop("app_version", "1.4.0"),
        **extra,
    }


def register(api: ApiClient, phone: str = "0912345678", **extra: Any) -> Any:
    body = {"phone": phone, "full_name": "Nguyễn Thị Lan", "password": PASSWORD, **extra}
    return api.post("/api/v1/auth/register", body)


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"
