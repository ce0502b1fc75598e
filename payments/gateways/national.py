"""The national public service portal's payment platform (Nền tảng thanh toán DVCQG).

Its merchant API is not public; this adapter models the documented style of
such platforms (see mobile_api_docs/payments.md, "Assumptions"):
- every message is a JSON object with a `signature` field: hex HMAC-SHA256,
  keyed with the merchant secret, of the other fields sorted by name and joined
  as `key=value&key=value` (values as sent, no encoding; nested values absent);
- init: POST `{base}/api/v1/transactions` {merchant_id, order_id, amount,
  currency, description, return_url, notify_url, expire_at, locale,
  client_ip, timestamp} → {code, message, transaction_id, payment_url,
  signature}; code "00" is success;
- callback (server to server, POST JSON to notify_url): {merchant_id,
  order_id, transaction_id, amount, currency, status (SUCCESS | FAILED |
  CANCELLED), bank_code, paid_at, signature}; answered with JSON {code,
  message}: 00 accepted, 01 order not found, 02 already processed, 04 amount
  mismatch, 97 invalid signature, 99 error; the platform retries other answers;
- return (browser): GET return_url?merchant_id&order_id&transaction_id&status&
  amount&signature (same signing);
- query: POST `{base}/api/v1/transactions/query` {merchant_id, order_id,
  timestamp, signature} → the callback's fields plus code (00 found, 01 not
  found) and status PENDING while unpaid.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import httpx
from django.conf import settings
from django.utils import timezone

from backend import strict_json
from payments.gateways import (
    CallbackAnswer,
    CallbackRejected,
    Checkout,
    GatewayError,
    GatewayResult,
    PaymentOrder,
    amount_digits,
)

ANSWERS = {
    "confirmed": ("00", "Accepted"),
    "order_not_found": ("01", "Order not found"),
    "already_confirmed": ("02", "Already processed"),
    "invalid_amount": ("04", "Amount mismatch"),
    "invalid_signature": ("97", "Invalid signature"),
    "unknown_error": ("99", "Error"),
}
OUTCOMES = {"SUCCESS": "paid", "FAILED": "failed", "CANCELLED": "cancelled", "PENDING": "pending"}


def signed_text(fields: dict[str, Any]) -> str:
    return "&".join(
        f"{key}={fields[key]}"
        for key in sorted(fields)
        if key != "signature" and fields[key] is not None and not isinstance(fields[key], dict)
    )


def signature(secret: str, fields: dict[str, Any]) -> str:
    return hmac.new(secret.encode(), signed_text(fields).encode(), hashlib.sha256).hexdigest()


class NationalPlatformAdapter:
    name = "national"

    def __init__(self) -> None:
        self.merchant_id = settings.PAYMENT_NATIONAL_MERCHANT_ID
        self.secret = settings.PAYMENT_NATIONAL_SECRET
        self.base_url = settings.PAYMENT_NATIONAL_BASE_URL.rstrip("/")

    def _post(self, path: str, fields: dict[str, Any]) -> dict[str, Any]:
        body = {**fields, "signature": signature(self.secret, fields)}
        try:
            response = httpx.post(
                f"{self.base_url}{path}",
                json=body,
                timeout=settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS,
            )
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GatewayError(f"national {path}: {type(exc).__name__}") from exc
        if response.status_code != 200 or not isinstance(answer, dict):
            raise GatewayError(f"national {path}: HTTP {response.status_code}")
        if not self._signed(answer):
            raise GatewayError(f"national {path}: invalid signature on the answer")
        return answer

    def _signed(self, fields: dict[str, Any]) -> bool:
        try:
            given = str(fields.get("signature", "")).encode()
            expected = signature(self.secret, fields)
        except (UnicodeEncodeError, RecursionError):
            # Nothing a signer wrote: JSON may spell a lone surrogate ("\\ud800"), which
            # has no UTF-8 to sign, and nest a value deeper than `str` can write out.
            return False
        return bool(self.secret) and hmac.compare_digest(given, expected.encode())

    def start(self, order: PaymentOrder) -> Checkout:
        if not (self.secret and self.merchant_id):
            raise GatewayError("the national platform is not configured (PAYMENT_NATIONAL_*)")
        answer = self._post(
            "/api/v1/transactions",
            {
                "merchant_id": self.merchant_id,
                "order_id": order.order_ref,
                "amount": order.amount,
                "currency": "VND",
                "description": order.description,
                "return_url": order.return_url,
                "notify_url": order.callback_url,
                "expire_at": order.expires_at.isoformat(),
                "locale": order.language,
                "client_ip": order.client_ip,
                "timestamp": int(timezone.now().timestamp()),
            },
        )
        if answer.get("code") != "00" or not answer.get("payment_url"):
            raise GatewayError(f"national init refused: {answer.get('code')}")
        return Checkout(
            url=str(answer["payment_url"]), gateway_reference=str(answer["transaction_id"])
        )

    def _result(self, fields: dict[str, Any]) -> GatewayResult:
        if not self._signed(fields):
            raise CallbackRejected("invalid_signature")
        if str(fields.get("merchant_id", "")) != self.merchant_id:
            raise CallbackRejected("wrong_merchant")
        order_ref = str(fields.get("order_id") or "")
        status = str(fields.get("status", ""))
        if not order_ref or status not in OUTCOMES:
            raise CallbackRejected("malformed")
        amount = fields.get("amount")
        paid_at = None
        if fields.get("paid_at"):
            try:
                paid_at = dt.datetime.fromisoformat(str(fields["paid_at"]))
            except ValueError:
                paid_at = None
        return GatewayResult(
            order_ref=order_ref,
            outcome=OUTCOMES[status],
            amount=amount_digits(amount),
            currency=str(fields.get("currency", "VND")),
            gateway_reference=str(fields.get("transaction_id", "")),
            bank_code=str(fields.get("bank_code", "")),
            failure_code="" if status == "SUCCESS" else status,
            paid_at=paid_at,
            raw={k: v for k, v in fields.items() if k != "signature"},
        )

    def parse_callback(self, query: dict[str, str], body: bytes) -> GatewayResult:
        try:
            fields = strict_json.loads(body)
        except (ValueError, RecursionError) as exc:
            # Not JSON, nested past the parser's depth, or a key given twice (read one
            # way by the platform's signer and another here: refused, not guessed).
            raise CallbackRejected("malformed") from exc
        if not isinstance(fields, dict):
            raise CallbackRejected("malformed")
        return self._result(fields)

    def parse_return(self, query: dict[str, str]) -> GatewayResult:
        fields: dict[str, Any] = dict(query)
        amount = amount_digits(fields.get("amount", ""))
        if amount is not None:
            fields["amount"] = amount
        return self._result(fields)

    def answer(self, answer: str) -> CallbackAnswer:
        code, message = ANSWERS.get(answer, ANSWERS["unknown_error"])
        return CallbackAnswer(200, json.dumps({"code": code, "message": message}).encode())

    def query(self, order_ref: str, created_at: dt.datetime) -> GatewayResult:
        answer = self._post(
            "/api/v1/transactions/query",
            {
                "merchant_id": self.merchant_id,
                "order_id": order_ref,
                "timestamp": int(timezone.now().timestamp()),
            },
        )
        if answer.get("code") == "01":
            return GatewayResult(order_ref, "not_found", None, "VND", raw=answer)
        if answer.get("code") != "00":
            raise GatewayError(f"national query: code {answer.get('code')}")
        try:
            result = self._result(answer)
        except CallbackRejected as exc:
            raise GatewayError(f"national query: {exc.reason}") from exc
        if result.order_ref != order_ref:
            raise GatewayError("national query: answer about another order")
        return result
