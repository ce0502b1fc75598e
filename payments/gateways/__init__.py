"""Payment gateway adapters: one interface, one class per gateway.

An adapter turns a payment into the gateway's checkout URL, checks and reads
the gateway's signed messages (server-to-server callback, browser return,
status query) into a `GatewayResult`, and words our answer to a callback the
way that gateway expects. It never touches the database: `payments.actions`
decides what a result means.

`settings.PAYMENT_GATEWAYS` maps names to classes; `PAYMENT_GATEWAY` picks the
one new payments use.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class GatewayError(Exception):
    """The gateway could not be reached or answered something unusable (retry later)."""


class CallbackRejected(Exception):
    """A callback or return that must change nothing. `reason` picks the answer."""

    def __init__(self, reason: str) -> None:
        # invalid_signature | wrong_merchant | malformed
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Checkout:
    url: str
    gateway_reference: str = ""


@dataclass(frozen=True)
class GatewayResult:
    """What a gateway says about one of our orders, after its signature was checked."""

    order_ref: str
    outcome: str  # paid | failed | cancelled | pending | not_found
    amount: int | None  # VND, as the gateway reports it
    currency: str
    gateway_reference: str = ""
    bank_code: str = ""
    failure_code: str = ""
    paid_at: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackAnswer:
    status: int
    body: bytes
    content_type: str = "application/json"


# What we tell a gateway about a callback (each adapter words it its own way).
ANSWERS = (
    "confirmed",
    "already_confirmed",
    "order_not_found",
    "invalid_amount",
    "invalid_signature",
    "unknown_error",
)


@dataclass(frozen=True)
class PaymentOrder:
    """What an adapter needs to start a checkout (no model import in adapters)."""

    order_ref: str
    amount: int
    description: str
    created_at: dt.datetime
    expires_at: dt.datetime
    return_url: str
    callback_url: str
    client_ip: str
    language: str


class GatewayAdapter(Protocol):
    name: str

    def start(self, order: PaymentOrder) -> Checkout: ...

    def parse_callback(self, query: dict[str, str], body: bytes) -> GatewayResult: ...

    def parse_return(self, query: dict[str, str]) -> GatewayResult: ...

    def answer(self, answer: str) -> CallbackAnswer: ...

    def query(self, order_ref: str, created_at: dt.datetime) -> GatewayResult: ...


def amount_digits(value: object, most: int = 18) -> int | None:
    """A gateway's amount written in ASCII digits (at most `most`), else None.

    `str.isdigit` is true of "²" and "١٢٣", which `int` refuses or reads, and of
    5,000 digits, which `int` refuses: a signed callback must not turn them into a 500.
    """
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > most:
        return None
    return int(text)


def gateway_names() -> list[str]:
    return list(settings.PAYMENT_GATEWAYS)


def get_gateway(name: str | None = None) -> GatewayAdapter:
    name = name or settings.PAYMENT_GATEWAY
    path = settings.PAYMENT_GATEWAYS.get(name)
    if path is None:
        raise KeyError(name)
    adapter: GatewayAdapter = import_string(path)()
    return adapter
