"""VNPost (Bưu điện Việt Nam) order API over HTTPS.

Wire format (JSON both ways, `X-API-Key` header):

- `POST /v1/orders` creates an order; an existing `order_number` answers 200
  with the same order instead of creating a second one (create-or-get).
- `POST /v1/orders/{waybill}/collect` asks for collection from the sender.
- `POST /v1/orders/{waybill}/cancel` cancels before collection.
- `GET /v1/orders/{waybill}` returns the status and its history.
- Errors: `{"error": {"code": "INVALID_ADDRESS", "message": "..."}}` with a 4xx
  status; 5xx and timeouts mean "try again later".

Every call here is idempotent (orders by order number), so transient failures
are retried a few times in the call before the job's own backoff takes over.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import httpx
from django.conf import settings

from postal.carriers import (
    CarrierAdapter,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    CreatedOrder,
    Order,
    Party,
    Tracking,
    TrackingEvent,
)

logger = logging.getLogger(__name__)

# The carrier's error codes -> ours. Anything unknown in a 4xx is a final refusal.
REJECTIONS = {
    "INVALID_ADDRESS": "carrier_invalid_address",
    "INVALID_PHONE": "carrier_invalid_phone",
    "INVALID_REQUEST": "carrier_invalid_request",
    "ORDER_NOT_FOUND": "carrier_order_not_found",
    "ORDER_NOT_CANCELLABLE": "carrier_not_cancellable",
}
TRANSIENT = {
    "UNAUTHORIZED": "carrier_unauthorized",  # our key is wrong or rotated: fix and retry
    "RATE_LIMITED": "carrier_rate_limited",
}


def _party(party: Party) -> dict[str, Any]:
    return {
        "name": party.name,
        "phone": party.phone,
        "address": {
            "street": party.street,
            "commune_code": party.commune_code,
            "province_code": party.province_code,
        },
    }


class VNPostAdapter(CarrierAdapter):
    name = "vnpost"

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_ms: int | None = None,
    ) -> None:
        self.base_url = (base_url or settings.POSTAL_VNPOST_BASE_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else settings.POSTAL_VNPOST_API_KEY
        self.timeout = timeout if timeout is not None else settings.POSTAL_VNPOST_TIMEOUT_SECONDS
        self.retries = retries if retries is not None else settings.POSTAL_VNPOST_HTTP_RETRIES
        self.backoff_ms = (
            backoff_ms if backoff_ms is not None else settings.POSTAL_VNPOST_HTTP_RETRY_BACKOFF_MS
        )

    # --- transport ----------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        attempt = 0
        while True:
            try:
                return self._call_once(method, path, body)
            except CarrierError as exc:
                if not exc.retryable or attempt >= self.retries:
                    raise
                attempt += 1
                logger.info("vnpost %s %s failed (%s), retry %s", method, path, exc.code, attempt)
                time.sleep(self.backoff_ms * (2 ** (attempt - 1)) / 1000)

    def _call_once(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        try:
            response = httpx.request(
                method,
                f"{self.base_url}{path}",
                json=body,
                headers={"X-API-Key": self.api_key, "Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise CarrierUnavailable("carrier_timeout", str(exc)) from exc
        except httpx.TransportError as exc:
            raise CarrierUnavailable("carrier_unreachable", str(exc)) from exc
        if response.status_code >= 500:
            raise CarrierUnavailable("carrier_unavailable", f"HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise CarrierUnavailable("carrier_bad_response", "not JSON") from exc
        if response.status_code >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            code = str((error or {}).get("code", ""))
            message = str((error or {}).get("message", ""))
            if code in TRANSIENT or response.status_code == 429:
                raise CarrierUnavailable(TRANSIENT.get(code, "carrier_rate_limited"), message)
            raise CarrierRejected(REJECTIONS.get(code, "carrier_error"), message)
        return payload

    # --- operations ------------------------------------------------------------------

    def create_order(self, order: Order) -> CreatedOrder:
        payload = self._call(
            "POST",
            "/v1/orders",
            {
                "order_number": order.order_number,
                "reference": order.reference,
                "service": "standard",
                "sender": _party(order.sender),
                "receiver": _party(order.receiver),
                "cod_amount": order.cod_amount,
                "postage": order.postage,
                "weight_grams": order.weight_grams,
                "note": order.note,
            },
        )
        try:
            return CreatedOrder(waybill=str(payload["waybill"]), order_number=order.order_number)
        except (KeyError, TypeError) as exc:
            raise CarrierUnavailable("carrier_bad_response", "no waybill") from exc

    def request_collection(self, waybill: str) -> None:
        self._call("POST", f"/v1/orders/{waybill}/collect", {})

    def cancel_order(self, waybill: str) -> None:
        self._call("POST", f"/v1/orders/{waybill}/cancel", {})

    def track(self, waybill: str) -> Tracking:
        payload = self._call("GET", f"/v1/orders/{waybill}")
        try:
            return Tracking(
                waybill=str(payload["waybill"]),
                status=str(payload["status"]),
                events=[
                    TrackingEvent(
                        status=str(item["status"]),
                        occurred_at=dt.datetime.fromisoformat(item["occurred_at"]),
                        location=str(item.get("location", "")),
                    )
                    for item in payload.get("events", [])
                ],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CarrierUnavailable("carrier_bad_response", "bad tracking") from exc
