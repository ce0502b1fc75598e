"""The carrier adapter interface: quote, create order, request collection, cancel, track.

Adapters translate our orders to a carrier's wire format and the carrier's
errors to `CarrierError`s with our codes. `retryable` errors (carrier down,
timeouts, rate limits) make the calling job retry with backoff; the others are
final (the carrier refuses the order as it is).
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string

from postal import tariffs

# Statuses a carrier reports for a parcel (the webhook's and track()'s vocabulary).
CARRIER_STATUSES = (
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "failed_attempt",
    "delivered",
    "returned",
)


class CarrierError(Exception):
    def __init__(self, code: str, message: str = "", *, retryable: bool) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.retryable = retryable


class CarrierUnavailable(CarrierError):
    """Down, slow, rate-limited or misconfigured: trying again later may work."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code, message, retryable=True)


class CarrierRejected(CarrierError):
    """The carrier refuses this request as it is: retrying the same call will not help."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code, message, retryable=False)


@dataclass(frozen=True)
class Party:
    name: str
    phone: str
    street: str
    commune_code: str
    province_code: str


@dataclass(frozen=True)
class Order:
    order_number: str  # unique per attempt at a parcel: the carrier's idempotency key
    reference: str  # the dossier code, printed on the label
    sender: Party
    receiver: Party
    cod_amount: int
    postage: int
    weight_grams: int
    note: str = ""


@dataclass(frozen=True)
class CreatedOrder:
    waybill: str
    order_number: str


@dataclass(frozen=True)
class TrackingEvent:
    status: str
    occurred_at: dt.datetime
    location: str = ""


@dataclass(frozen=True)
class Tracking:
    waybill: str
    status: str
    events: list[TrackingEvent] = field(default_factory=list)


class CarrierAdapter(abc.ABC):
    name: str

    def quote(self, from_province: str, to_province: str, weight_grams: int) -> tariffs.Price:
        """Postage from the carrier's published tariff (settings.POSTAL_TARIFF_FILE)."""
        return tariffs.price(self.name, from_province, to_province, weight_grams)

    @abc.abstractmethod
    def create_order(self, order: Order) -> CreatedOrder:
        """Create the order, or get it back if `order.order_number` already exists."""

    @abc.abstractmethod
    def request_collection(self, waybill: str) -> None:
        """Ask the carrier to collect the parcel from the sender now."""

    @abc.abstractmethod
    def cancel_order(self, waybill: str) -> None:
        """Cancel an order the carrier has not collected yet."""

    @abc.abstractmethod
    def track(self, waybill: str) -> Tracking:
        """The parcel's current status and history."""


def carrier_names() -> list[str]:
    return list(settings.POSTAL_CARRIERS)


def get_adapter(carrier: str) -> CarrierAdapter:
    path = settings.POSTAL_CARRIERS.get(carrier)
    if path is None:
        raise KeyError(carrier)
    adapter: CarrierAdapter = import_string(path)()
    return adapter
