"""Carrier webhooks: signature, freshness and the message format.

The carrier signs `{timestamp}.{raw body}` with HMAC-SHA256 and its secret
(settings.POSTAL_WEBHOOK_SECRETS[carrier]) and sends:

    X-Carrier-Timestamp: 1764000000          (Unix seconds)
    X-Carrier-Signature: sha256=<hex digest>

A message older or newer than POSTAL_WEBHOOK_TOLERANCE_SECONDS is refused, so
a captured request cannot be replayed later; within the window, the message id
makes a replay harmless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Literal

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Schema
from ninja.security import APIKeyHeader
from pydantic import AwareDatetime, Field, field_validator

from backend.errors import NotAuthenticated, NotFound
from postal.actions import CarrierUpdate
from postal.carriers import carrier_names

TIMESTAMP_HEADER = "X-Carrier-Timestamp"
SIGNATURE_HEADER = "X-Carrier-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(carrier: str, body: bytes, timestamp: str | None, signature: str | None) -> None:
    """Raise 401 unless the request is signed by `carrier` within the time window."""
    secret = settings.POSTAL_WEBHOOK_SECRETS.get(carrier) or ""
    invalid = NotAuthenticated("invalid_signature", _("The webhook signature is not valid."))
    if not secret or not timestamp or not signature:
        raise invalid
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise invalid
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise invalid from exc
    if abs(timezone.now().timestamp() - sent) > settings.POSTAL_WEBHOOK_TOLERANCE_SECONDS:
        raise NotAuthenticated(
            "stale_timestamp", _("The webhook timestamp is outside the allowed window.")
        )


class CarrierSignature(APIKeyHeader):
    """ninja auth of the webhook: the raw body is signed by the carrier the path names
    (sets request.auth to that carrier). It runs before the body is parsed, so an
    unsigned caller learns nothing about the format; the body's refusals then come
    from the API's own machinery (coded, in the request's language), as for the
    agencies' signed routes."""

    param_name = SIGNATURE_HEADER
    openapi_description = (
        "X-Carrier-Signature: sha256=<hex HMAC-SHA256 of `{X-Carrier-Timestamp}.{raw body}` "
        "with the carrier's secret> (see mobile_api_docs/postal.md)."
    )

    def authenticate(self, request: HttpRequest, key: str | None) -> str:
        match = request.resolver_match
        carrier = str(match.kwargs.get("carrier", "")) if match is not None else ""
        if carrier not in carrier_names():
            raise NotFound()
        verify(carrier, request.body, request.headers.get(TIMESTAMP_HEADER), key)
        return carrier


carrier_signature = CarrierSignature()


class CarrierWebhookIn(Schema):
    message_id: str = Field(min_length=1, max_length=100)
    order_number: str = Field("", max_length=80)
    waybill: str = Field("", max_length=40)
    status: Literal[
        "picked_up", "in_transit", "out_for_delivery", "failed_attempt", "delivered", "returned"
    ]
    occurred_at: AwareDatetime
    location: str = Field("", max_length=255)

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        try:
            return value.astimezone(dt.UTC)
        except OverflowError as exc:  # year 1 or 9999 moved out of range by its offset
            raise ValueError(_("This date is out of range.")) from exc


def carrier_update(message: CarrierWebhookIn) -> CarrierUpdate:
    return CarrierUpdate(
        message_id=message.message_id,
        order_number=message.order_number,
        waybill=message.waybill,
        status=message.status,
        occurred_at=message.occurred_at,
        location=message.location,
        payload=message.model_dump(mode="json"),
    )
