"""Helpers for account tests: fast password hashing, reading codes from the SMS outbox."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from auth import sms_codes
from auth.actions import accounts, notices, support
from auth.sms import read_outbox
from fakes.sms_gateway import FakeGateway, running_gateway
from tests.conftest import ApiClient, work_queued_jobs

PASSWORD = "Str0ng-pass!word"
# Every SMS notice (a text without a code): the SMS text tests check each.
NOTICES = [
    sms_codes.NOTICE_ALREADY_REGISTERED,
    accounts.NOTICE_PHONE_CHANGED,
    support.NOTICE_RESET_MOVED,
    support.NOTICE_RESET_NEW_NUMBER,
    support.NOTICE_RESET,
    notices.NOTICE_TOTP_ENABLED,
    notices.NOTICE_TOTP_DISABLED,
    notices.NOTICE_RECOVERY_CODES_REGENERATED,
    notices.NOTICE_PASSWORD_CHANGED,
    notices.NOTICE_PASSWORD_RESET,
]
CODE_RE = re.compile(r"^(\d{6}) ")


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    # PBKDF2's cost is the point in production; here it only slows the suite down.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def deliver_sms() -> list[tuple[str, str]]:
    """Run the SMS jobs queued so far (codes and notices), as the worker would: a
    request only queues them (auth/actions/challenges.py). Returns what each did."""
    return work_queued_jobs(["sms"])


def all_sms() -> list[dict[str, str]]:
    """Everything texted so far, once the queued SMS jobs have run."""
    deliver_sms()
    return read_outbox()


def sms_to(phone: str) -> list[dict[str, str]]:
    """What was texted to `phone`, once the queued SMS jobs have run."""
    deliver_sms()
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


@pytest.fixture
def gateway(settings: Any) -> Iterator[FakeGateway]:
    """The fake brand-name SMS gateway (HTTP on loopback), wired in (SMS_BACKEND=http)."""
    with running_gateway() as fake:
        settings.SMS_BACKEND = "http"
        settings.SMS_HTTP_URL = fake.url
        settings.SMS_API_KEY = "test-api-key"
        settings.SMS_SECRET_KEY = "test-secret"
        settings.SMS_BRANDNAME = "DVCONG"
        settings.SMS_HTTP_TIMEOUT_SECONDS = 2
        yield fake


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
