"""VNPay payment gateway (API version 2.1.0).

Wire format, as VNPay documents it:
- checkout: the browser is sent to `PAYMENT_VNPAY_PAY_URL?vnp_...&vnp_SecureHash=...`
  with vnp_Version=2.1.0, vnp_Command=pay, vnp_TmnCode, vnp_Amount (VND × 100),
  vnp_CurrCode=VND, vnp_TxnRef (our order), vnp_OrderInfo, vnp_OrderType,
  vnp_Locale (vn | en), vnp_ReturnUrl, vnp_IpAddr, vnp_CreateDate and
  vnp_ExpireDate (yyyyMMddHHmmss, GMT+7);
- `vnp_SecureHash` = hex HMAC-SHA512, keyed with the hash secret, of the vnp_*
  parameters sorted by name and urlencoded (`quote_plus`) as `k=v&k=v`
  (vnp_SecureHash and vnp_SecureHashType themselves excluded);
- IPN: VNPay calls the merchant's IPN URL (configured at VNPay, GET) with the
  signed result; the merchant answers JSON `{"RspCode", "Message"}`: 00 Confirm
  Success, 01 Order not found, 02 Order already confirmed, 04 invalid amount,
  97 Invalid signature, 99 Unknown error. VNPay retries until it gets 00 or 02;
- the browser comes back to vnp_ReturnUrl with the same signed parameters;
- querydr: POST JSON to `PAYMENT_VNPAY_API_URL`; request and response carry a
  hex HMAC-SHA512 over their documented fields joined by `|`.
A result is a success only when both vnp_ResponseCode and vnp_TransactionStatus
are "00".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
import zoneinfo
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
from django.conf import settings

from payments.gateways import (
    CallbackAnswer,
    CallbackRejected,
    Checkout,
    GatewayError,
    GatewayResult,
    PaymentOrder,
    amount_digits,
)

VN_TIME = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
VERSION = "2.1.0"
ANSWERS = {
    "confirmed": ("00", "Confirm Success"),
    "order_not_found": ("01", "Order not found"),
    "already_confirmed": ("02", "Order already confirmed"),
    "invalid_amount": ("04", "invalid amount"),
    "invalid_signature": ("97", "Invalid signature"),
    "unknown_error": ("99", "Unknown error"),
}
QUERY_REQUEST_FIELDS = (
    "vnp_RequestId",
    "vnp_Version",
    "vnp_Command",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_TransactionDate",
    "vnp_CreateDate",
    "vnp_IpAddr",
    "vnp_OrderInfo",
)
QUERY_RESPONSE_FIELDS = (
    "vnp_ResponseId",
    "vnp_Command",
    "vnp_ResponseCode",
    "vnp_Message",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_Amount",
    "vnp_BankCode",
    "vnp_PayDate",
    "vnp_TransactionNo",
    "vnp_TransactionType",
    "vnp_TransactionStatus",
    "vnp_OrderInfo",
    "vnp_PromotionCode",
    "vnp_PromotionAmount",
)


def vn_time(moment: dt.datetime) -> str:
    return moment.astimezone(VN_TIME).strftime("%Y%m%d%H%M%S")


def parse_vn_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN_TIME)
    except ValueError:
        return None


def hash_data(params: dict[str, str]) -> str:
    """The signed text: vnp_* parameters sorted by name, urlencoded, joined with `&`."""
    items = sorted(
        (key, value)
        for key, value in params.items()
        if key.startswith("vnp_") and key not in ("vnp_SecureHash", "vnp_SecureHashType")
    )
    return "&".join(f"{quote_plus(key)}={quote_plus(str(value))}" for key, value in items)


def secure_hash(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


class VNPayAdapter:
    name = "vnpay"

    def __init__(self) -> None:
        self.tmn_code = settings.PAYMENT_VNPAY_TMN_CODE
        self.secret = settings.PAYMENT_VNPAY_HASH_SECRET
        self.pay_url = settings.PAYMENT_VNPAY_PAY_URL
        self.api_url = settings.PAYMENT_VNPAY_API_URL

    # --- checkout --------------------------------------------------------------------

    def start(self, order: PaymentOrder) -> Checkout:
        if not (self.secret and self.tmn_code):
            raise GatewayError("vnpay is not configured (PAYMENT_VNPAY_*)")
        params = {
            "vnp_Version": VERSION,
            "vnp_Command": "pay",
            "vnp_TmnCode": self.tmn_code,
            "vnp_Amount": str(order.amount * 100),
            "vnp_CurrCode": "VND",
            "vnp_TxnRef": order.order_ref,
            "vnp_OrderInfo": order.description,
            "vnp_OrderType": "billpayment",
            "vnp_Locale": "en" if order.language == "en" else "vn",
            "vnp_ReturnUrl": order.return_url,
            "vnp_IpAddr": order.client_ip,
            "vnp_CreateDate": vn_time(order.created_at),
            "vnp_ExpireDate": vn_time(order.expires_at),
        }
        signature = secure_hash(self.secret, hash_data(params))
        query = urlencode({**params, "vnp_SecureHash": signature})
        return Checkout(url=f"{self.pay_url}?{query}")

    # --- IPN and return --------------------------------------------------------------

    def _verified(self, params: dict[str, str]) -> dict[str, str]:
        given = params.get("vnp_SecureHash", "")
        expected = secure_hash(self.secret, hash_data(params))
        if not self.secret or not hmac.compare_digest(given.lower().encode(), expected.encode()):
            raise CallbackRejected("invalid_signature")
        if params.get("vnp_TmnCode") != self.tmn_code:
            raise CallbackRejected("wrong_merchant")
        if not params.get("vnp_TxnRef"):
            raise CallbackRejected("malformed")
        return params

    def _result(self, params: dict[str, str]) -> GatewayResult:
        hundredths = amount_digits(params.get("vnp_Amount", ""))
        amount: int | None = None
        if hundredths is not None and hundredths % 100 == 0:
            amount = hundredths // 100
        success = (
            params.get("vnp_ResponseCode") == "00" and params.get("vnp_TransactionStatus") == "00"
        )
        response_code = params.get("vnp_ResponseCode", "")
        if success:
            outcome = "paid"
        elif response_code == "24":  # the customer cancelled the transaction
            outcome = "cancelled"
        else:
            outcome = "failed"
        return GatewayResult(
            order_ref=params["vnp_TxnRef"],
            outcome=outcome,
            amount=amount,
            # VNPay settles in VND only; a currency given must say so.
            currency=params.get("vnp_CurrCode", "VND"),
            gateway_reference=params.get("vnp_TransactionNo", ""),
            bank_code=params.get("vnp_BankCode", ""),
            failure_code="" if success else response_code,
            paid_at=parse_vn_time(params.get("vnp_PayDate", "")) if success else None,
            raw={k: v for k, v in params.items() if k != "vnp_SecureHash"},
        )

    def parse_callback(self, query: dict[str, str], body: bytes) -> GatewayResult:
        return self._result(self._verified(query))

    def parse_return(self, query: dict[str, str]) -> GatewayResult:
        return self._result(self._verified(query))

    def answer(self, answer: str) -> CallbackAnswer:
        code, message = ANSWERS.get(answer, ANSWERS["unknown_error"])
        body = json.dumps({"RspCode": code, "Message": message}).encode()
        return CallbackAnswer(status=200, body=body)

    # --- querydr ---------------------------------------------------------------------

    def query(self, order_ref: str, created_at: dt.datetime) -> GatewayResult:
        now = dt.datetime.now(tz=VN_TIME)
        request: dict[str, str] = {
            "vnp_RequestId": uuid.uuid4().hex[:32],
            "vnp_Version": VERSION,
            "vnp_Command": "querydr",
            "vnp_TmnCode": self.tmn_code,
            "vnp_TxnRef": order_ref,
            "vnp_OrderInfo": f"Truy van giao dich {order_ref}",
            "vnp_TransactionDate": vn_time(created_at),
            "vnp_CreateDate": vn_time(now),
            "vnp_IpAddr": settings.PAYMENT_SERVER_IP,
        }
        request["vnp_SecureHash"] = secure_hash(
            self.secret, "|".join(request[f] for f in QUERY_REQUEST_FIELDS)
        )
        try:
            response = httpx.post(
                self.api_url, json=request, timeout=settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS
            )
            answer: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GatewayError(f"vnpay querydr: {type(exc).__name__}") from exc
        if response.status_code != 200 or not isinstance(answer, dict):
            raise GatewayError(f"vnpay querydr: HTTP {response.status_code}")
        text = "|".join(str(answer.get(f, "")) for f in QUERY_RESPONSE_FIELDS)
        signature = str(answer.get("vnp_SecureHash", ""))
        if not hmac.compare_digest(signature.encode(), secure_hash(self.secret, text).encode()):
            raise GatewayError("vnpay querydr: invalid signature on the answer")
        code = str(answer.get("vnp_ResponseCode", ""))
        if code == "91":  # transaction not found
            return GatewayResult(order_ref, "not_found", None, "VND", raw=answer)
        if code != "00":
            raise GatewayError(f"vnpay querydr: response code {code}")
        if str(answer.get("vnp_TxnRef")) != order_ref:
            raise GatewayError("vnpay querydr: answer about another order")
        status = str(answer.get("vnp_TransactionStatus", ""))
        params = {k: str(v) for k, v in answer.items()}
        params["vnp_ResponseCode"] = "00" if status == "00" else status
        result = self._result(params)
        if status == "01":  # not finished yet
            return GatewayResult(order_ref, "pending", result.amount, "VND", raw=answer)
        return result
