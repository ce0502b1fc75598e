"""A loopback payment gateway speaking VNPay's and the national platform's wire formats.

    python -m fakes.payment_gateway --port 8910 --callback-base http://127.0.0.1:8000

It checks the merchant's signatures (and refuses what is badly signed, as the
real gateways do), shows a payment page, and when "the citizen pays" (GET the
page's pay link) it redirects the browser back to the merchant's return URL
with a signed result and calls the merchant's callback (IPN) in the background,
retrying until the merchant answers 00 or 02. It answers status queries
(VNPay querydr, the national platform's query).

Callback faults are settings (`configure(...)`, or `POST /_fake/config` for a
fake in its own process): lose every callback, send each one N more times at
once, delay them (slow callbacks). `GET /_fake/log` shows orders and every
callback attempt with the merchant's answer. The plumbing, the request faults
(`fail_next`, `fault_mode`, `delay`) and the other /_fake/ controls are those of
every fake (fakes/server.py); an `error` fault with a code on the querydr or the
national platform's API answers that API's own signed answer with that code.

The signing code here is written independently of payments/gateways/*: a bug
in one is caught by the other.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import hmac
import html
import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from fakes.server import FakeServer, Fault, Request, Response, main

VN = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass
class Config:
    vnpay_tmn_code: str = "DEMO0001"
    vnpay_secret: str = "demo-vnpay-hash-secret"
    # At VNPay the IPN URL is set once per merchant in its portal, not per payment.
    vnpay_ipn_url: str = "http://127.0.0.1:8000/api/v1/payments/gateways/vnpay/callback"
    national_merchant_id: str = "DEMO-DVC"
    national_secret: str = "demo-national-secret"
    drop_callbacks: bool = False
    duplicate_callbacks: int = 0  # extra copies sent at the same time
    callback_delay_ms: int = 0
    callback_attempts: int = 5
    retry_interval_ms: int = 300


@dataclass
class State:
    config: Config = field(default_factory=Config)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by order ref
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    idle: threading.Condition = field(default_factory=threading.Condition)
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(14000001))


# --- Signatures (the gateways' side) ---------------------------------------------------


def vnpay_hash(secret: str, params: dict[str, str]) -> str:
    text = "&".join(
        f"{urllib.parse.quote_plus(k)}={urllib.parse.quote_plus(str(v))}"
        for k, v in sorted(params.items())
        if k.startswith("vnp_") and k not in ("vnp_SecureHash", "vnp_SecureHashType")
    )
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


def vnpay_pipe_hash(secret: str, values: list[str]) -> str:
    return hmac.new(secret.encode(), "|".join(values).encode(), hashlib.sha512).hexdigest()


def national_sign(secret: str, fields: dict[str, Any]) -> str:
    text = "&".join(
        f"{k}={fields[k]}"
        for k in sorted(fields)
        if k != "signature" and fields[k] is not None and not isinstance(fields[k], dict)
    )
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def vn_now() -> str:
    return dt.datetime.now(tz=VN).strftime("%Y%m%d%H%M%S")


# --- Results --------------------------------------------------------------------------


def vnpay_result(state: State, order: dict[str, Any]) -> dict[str, str]:
    cfg = state.config
    success = order["status"] == "paid"
    code = {"paid": "00", "cancelled": "24", "failed": "51"}[order["status"]]
    params = {
        "vnp_Amount": str(order["reported_amount"] * 100),
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": f"VNP{order['transaction_no']}",
        "vnp_CardType": "ATM",
        "vnp_OrderInfo": order["params"].get("vnp_OrderInfo", ""),
        "vnp_PayDate": order["pay_date"],
        "vnp_ResponseCode": code,
        "vnp_TmnCode": order["params"]["vnp_TmnCode"],
        "vnp_TransactionNo": order["transaction_no"] if success else "0",
        "vnp_TransactionStatus": "00" if success else "02",
        "vnp_TxnRef": order["ref"],
    }
    params["vnp_SecureHash"] = vnpay_hash(cfg.vnpay_secret, params)
    return params


def national_result(state: State, order: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "merchant_id": order["params"]["merchant_id"],
        "order_id": order["ref"],
        "transaction_id": order["transaction_no"],
        "amount": order["reported_amount"],
        "currency": "VND",
        "status": {"paid": "SUCCESS", "failed": "FAILED", "cancelled": "CANCELLED"}.get(
            order["status"], "PENDING"
        ),
        "bank_code": "VCB",
        "paid_at": order.get("paid_at_iso") or "",
    }
    fields["signature"] = national_sign(state.config.national_secret, fields)
    return fields


# --- Callback delivery -----------------------------------------------------------------


def _deliver_once(state: State, order: dict[str, Any], copy: int) -> None:
    cfg = state.config
    if cfg.callback_delay_ms:
        time.sleep(cfg.callback_delay_ms / 1000)
    for attempt in range(1, cfg.callback_attempts + 1):
        started = time.monotonic()
        try:
            if order["gateway"] == "vnpay":
                query = urllib.parse.urlencode(vnpay_result(state, order))
                req = urllib.request.Request(f"{cfg.vnpay_ipn_url}?{query}", method="GET")
            else:
                body = json.dumps(national_result(state, order)).encode()
                req = urllib.request.Request(
                    order["params"]["notify_url"],
                    data=body,
                    method="POST",
                    headers={"Content-Type": "application/json"},
                )
            with urllib.request.urlopen(req, timeout=10) as response:  # nosec B310
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        except OSError as exc:
            status, text = 0, type(exc).__name__
        try:
            answer = json.loads(text)
            code = str(answer.get("RspCode", answer.get("code", "")))
        except (ValueError, AttributeError):
            code = ""
        with state.lock:
            state.callbacks.append(
                {
                    "gateway": order["gateway"],
                    "order_ref": order["ref"],
                    "copy": copy,
                    "attempt": attempt,
                    "http_status": status,
                    "code": code,
                    "seconds": round(time.monotonic() - started, 4),
                }
            )
        if status == 200 and code in ("00", "02"):
            return
        time.sleep(cfg.retry_interval_ms / 1000)


def _deliver(state: State, order: dict[str, Any]) -> None:
    copies = 1 + max(0, state.config.duplicate_callbacks)
    threads = [
        threading.Thread(target=_deliver_once, args=(state, order, n), daemon=True)
        for n in range(copies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with state.idle:
        state.in_flight -= 1
        state.idle.notify_all()


def send_callbacks(state: State, order: dict[str, Any]) -> None:
    if state.config.drop_callbacks:
        with state.lock:
            state.callbacks.append(
                {"gateway": order["gateway"], "order_ref": order["ref"], "dropped": True}
            )
        return
    with state.idle:
        state.in_flight += 1
    threading.Thread(target=_deliver, args=(state, order), daemon=True).start()


# --- HTTP -----------------------------------------------------------------------------

CHECKOUT_PATH = "/paymentv2/vpcpay.html"
PAY_PATH = "/paymentv2/pay"
QUERYDR_PATH = "/merchant_webapi/api/transaction"
NATIONAL_API = "/national/api/v1/transactions"
NATIONAL_PAGE = "/national/pay/"
QUERYDR_REQUEST = [
    "vnp_RequestId",
    "vnp_Version",
    "vnp_Command",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_TransactionDate",
    "vnp_CreateDate",
    "vnp_IpAddr",
    "vnp_OrderInfo",
]
QUERYDR_ANSWER = [
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
]
# The messages of the codes the gateways answer (others: "Unknown error").
VNPAY_MESSAGES = {
    "02": "Merchant is not active",
    "91": "Transaction not found",
    "94": "Duplicate request",
    "97": "Invalid Checksum",
    "99": "Unknown error",
}
NATIONAL_MESSAGES = {"01": "Not found", "97": "Invalid signature", "99": "Unknown error"}


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html lang=vi><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    ).encode()


def _html(status: int, title: str, body: str = "") -> Response:
    return Response(status, _page(title, body), {}, "text/html")


def _json(status: int, body: Any) -> Response:
    return Response(status, json.dumps(body).encode(), {}, "application/json")


def _redirect(location: str) -> Response:
    return Response(302, b"", {"Location": location}, "text/plain")


class FakePaymentGateway(FakeServer):
    """Start in a thread (tests) or as its own process (`python -m fakes.payment_gateway`)."""

    name = "fake-payment-gateway"
    default_port = 8910

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        super().__init__(host, port)
        self._initial_config = Config(**config)  # what `reset` goes back to
        self.state = State(config=replace(self._initial_config))

    @property
    def url(self) -> str:
        return self.base_url

    def wait_for_callbacks(self, timeout: float = 10.0) -> bool:
        """Until every callback delivery started so far has finished (or timeout)."""
        with self.state.idle:
            return self.state.idle.wait_for(lambda: self.state.in_flight == 0, timeout)

    def configure(self, **changes: Any) -> Config:
        """Change settings of `Config` (callback faults, keys); all or none."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(Config)})
        if unknown:
            raise ValueError(f"unknown setting {', '.join(unknown)}")
        with self.state.lock:
            for key, value in changes.items():
                setattr(self.state.config, key, value)
            return replace(self.state.config)

    def reset(self) -> None:
        """Forget orders and callbacks; the settings go back to those it was started with."""
        super().reset()
        with self.state.lock:
            self.state.orders.clear()
            self.state.callbacks.clear()
            self.state.config = replace(self._initial_config)

    def log(self) -> dict[str, Any]:
        log = super().log()
        with self.state.lock:
            orders = list(self.state.orders.values())
            return {"orders": orders, "callbacks": list(self.state.callbacks), **log}

    def control(self, request: Request) -> Response | None:
        if request.method == "POST" and request.path == "/_fake/config":
            return _json(200, asdict(self.configure(**request.json_object())))
        return None

    # --- routes --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if request.method == "GET":
            query = {key: values[-1] for key, values in request.query.items()}
            if path == CHECKOUT_PATH:
                return self._vnpay_checkout(query)
            if path == PAY_PATH:
                return self._pay(query.get("ref", ""), query)
            if path.startswith(NATIONAL_PAGE):
                return self._national_page(path, query)
        if request.method == "POST":
            if path == QUERYDR_PATH:
                return self._vnpay_querydr(request.body)
            if path == NATIONAL_API:
                return self._national_init(request.body, request.header("Host"))
            if path == f"{NATIONAL_API}/query":
                return self._national_query(request.body)
        return _json(404, {"error": "not found"})

    def error_response(self, status: int, code: str) -> Response:
        """The gateways' error page, as their checkout pages show one."""
        return _html(status, f"Giao dịch không thành công (code={code})")

    def _faulty_response(self, fault: Fault, request: Request) -> Response | None:
        # An `error` with a code on a server-to-server API answers that API's own answer
        # with the code, signed, under the fault's status (the gateways answer their
        # errors 200 with a code; `status=200` is the realistic one).
        code = fault.code
        if fault.kind == "error" and code and request.path == QUERYDR_PATH:
            asked = _json_object(request.body) or {}
            message = VNPAY_MESSAGES.get(code, "Unknown error")
            return _json(fault.status, self._querydr_answer(asked, code, message))
        if fault.kind == "error" and code and request.path.startswith(NATIONAL_API):
            message = NATIONAL_MESSAGES.get(code, "Unknown error")
            answer = self._national_signed_answer({"code": code, "message": message})
            return _json(fault.status, answer)
        return super()._faulty_response(fault, request)

    # -- VNPay
    def _vnpay_checkout(self, query: dict[str, str]) -> Response:
        state, cfg = self.state, self.state.config
        given = query.get("vnp_SecureHash", "")
        if not hmac.compare_digest(given, vnpay_hash(cfg.vnpay_secret, query)):
            return _html(400, "Sai chữ ký (code=97)")
        if query.get("vnp_TmnCode") != cfg.vnpay_tmn_code:
            return _html(400, "Website chưa được phê duyệt (code=02)")
        required = ("vnp_Amount", "vnp_TxnRef", "vnp_ReturnUrl", "vnp_Version", "vnp_Command")
        if any(not query.get(k) for k in required) or query["vnp_Command"] != "pay":
            return _html(400, "Dữ liệu không hợp lệ (code=03)")
        ref = query["vnp_TxnRef"]
        with state.lock:
            order = state.orders.get(ref)
            if order is None:
                order = {
                    "gateway": "vnpay",
                    "ref": ref,
                    "params": query,
                    "amount": int(query["vnp_Amount"]) // 100,
                    "reported_amount": int(query["vnp_Amount"]) // 100,
                    "status": "pending",
                    "transaction_no": str(next(state.numbers)),
                    "pay_date": "",
                    "create_date": query.get("vnp_CreateDate", ""),
                    "expire_date": query.get("vnp_ExpireDate", ""),
                }
                state.orders[ref] = order
        return self._payment_page(order)

    def _payment_page(self, order: dict[str, Any]) -> Response:
        if order["gateway"] == "vnpay":
            link = f"{PAY_PATH}?ref={urllib.parse.quote(order['ref'])}"
        else:
            link = f"{NATIONAL_PAGE}{order['transaction_no']}/confirm?x=1"
        body = (
            f"<p>Số tiền: {order['amount']:,} VND</p>"
            f"<p><a id=pay href='{html.escape(link)}&outcome=success'>Thanh toán</a> "
            f"<a id=cancel href='{html.escape(link)}&outcome=cancel'>Hủy</a></p>"
        )
        return _html(200, "Cổng thanh toán (giả lập)", body)

    def _pay(self, ref: str, query: dict[str, str]) -> Response:
        state = self.state
        outcome = query.get("outcome", "success")
        with state.lock:
            order = state.orders.get(ref)
            if order is None:
                return _html(404, "Không tìm thấy giao dịch")
            expire = order.get("expire_date", "")
            if order["status"] == "pending":
                if expire and vn_now() > expire and outcome == "success":
                    outcome = "fail"  # VNPay: "giao dịch đã quá thời gian chờ thanh toán"
                order["status"] = {"success": "paid", "cancel": "cancelled"}.get(outcome, "failed")
                order["pay_date"] = vn_now()
                order["paid_at_iso"] = dt.datetime.now(tz=VN).isoformat()
                if query.get("amount", "").isdigit():  # a test of a tampered total
                    order["reported_amount"] = int(query["amount"])
        send_callbacks(state, order)
        if order["gateway"] == "vnpay":
            params = vnpay_result(state, order)
            target = order["params"]["vnp_ReturnUrl"]
        else:
            result = national_result(state, order)
            params = {k: str(v) for k, v in result.items() if k != "bank_code"}
            params["signature"] = national_sign(
                state.config.national_secret,
                {k: v for k, v in result.items() if k != "bank_code"},
            )
            target = order["params"]["return_url"]
        sep = "&" if "?" in target else "?"
        return _redirect(f"{target}{sep}{urllib.parse.urlencode(params)}")

    def _vnpay_querydr(self, body: bytes) -> Response:
        cfg = self.state.config
        try:
            asked = json.loads(body)
        except ValueError:
            return _json(400, {"vnp_ResponseCode": "03", "vnp_Message": "Invalid data"})
        expected = vnpay_pipe_hash(
            cfg.vnpay_secret, [str(asked.get(n, "")) for n in QUERYDR_REQUEST]
        )
        order = self.state.orders.get(str(asked.get("vnp_TxnRef", "")))
        if not hmac.compare_digest(str(asked.get("vnp_SecureHash", "")), expected):
            return _json(200, self._querydr_answer(asked, "97", VNPAY_MESSAGES["97"]))
        if asked.get("vnp_TmnCode") != cfg.vnpay_tmn_code:
            return _json(200, self._querydr_answer(asked, "02", VNPAY_MESSAGES["02"]))
        if order is None:
            return _json(200, self._querydr_answer(asked, "91", VNPAY_MESSAGES["91"]))
        return _json(200, self._querydr_answer(asked, "00", "QueryDR Success", order))

    def _querydr_answer(
        self, asked: dict[str, Any], code: str, message: str, order: dict[str, Any] | None = None
    ) -> dict[str, str]:
        """VNPay's querydr answer, signed; the transaction's fields only for a found order."""
        answer: dict[str, str] = {
            "vnp_ResponseId": os.urandom(8).hex(),
            "vnp_Command": "querydr",
            "vnp_TmnCode": str(asked.get("vnp_TmnCode", "")),
            "vnp_TxnRef": str(asked.get("vnp_TxnRef", "")),
            "vnp_Amount": "",
            "vnp_BankCode": "",
            "vnp_PayDate": "",
            "vnp_TransactionNo": "",
            "vnp_TransactionType": "01",
            "vnp_TransactionStatus": "",
            "vnp_OrderInfo": str(asked.get("vnp_OrderInfo", "")),
            "vnp_PromotionCode": "",
            "vnp_PromotionAmount": "",
            "vnp_ResponseCode": code,
            "vnp_Message": message,
        }
        if order is not None:
            status = {"pending": "01", "paid": "00", "cancelled": "02", "failed": "02"}
            answer.update(
                vnp_Amount=str(order["reported_amount"] * 100),
                vnp_BankCode="NCB",
                vnp_PayDate=order["pay_date"],
                vnp_TransactionNo=order["transaction_no"],
                vnp_TransactionStatus=status[order["status"]],
            )
        answer["vnp_SecureHash"] = vnpay_pipe_hash(
            self.state.config.vnpay_secret, [answer.get(n, "") for n in QUERYDR_ANSWER]
        )
        return answer

    # -- national platform
    def _national_page(self, path: str, query: dict[str, str]) -> Response:
        parts = path.split("/")
        tid = parts[3] if len(parts) > 3 else ""
        with self.state.lock:
            orders = list(self.state.orders.values())
        order = next((o for o in orders if o["transaction_no"] == tid), None)
        if order is None:
            return _html(404, "Không tìm thấy giao dịch")
        if len(parts) > 4 and parts[4] == "confirm":
            return self._pay(order["ref"], query)
        return self._payment_page(order)

    def _national_request(self, body: bytes) -> dict[str, Any] | None:
        """The merchant's signed request, or None when it is not one (or not ours)."""
        cfg = self.state.config
        fields = _json_object(body)
        if fields is None:
            return None
        given = str(fields.get("signature", ""))
        if not hmac.compare_digest(given, national_sign(cfg.national_secret, fields)):
            return None
        if fields.get("merchant_id") != cfg.national_merchant_id:
            return None
        return fields

    def _national_signed_answer(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "signature": national_sign(self.state.config.national_secret, fields)}

    def _national_answer(self, fields: dict[str, Any]) -> Response:
        return _json(200, self._national_signed_answer(fields))

    def _national_init(self, body: bytes, host: str) -> Response:
        state = self.state
        fields = self._national_request(body)
        if fields is None:
            return self._national_answer({"code": "97", "message": "Invalid signature"})
        ref = str(fields.get("order_id", ""))
        with state.lock:
            order = state.orders.get(ref)
            if order is None:
                order = {
                    "gateway": "national",
                    "ref": ref,
                    "params": fields,
                    "amount": int(fields["amount"]),
                    "reported_amount": int(fields["amount"]),
                    "status": "pending",
                    "transaction_no": f"NTT{next(state.numbers)}",
                    "pay_date": "",
                }
                state.orders[ref] = order
        base = f"http://{host or '127.0.0.1'}"
        return self._national_answer(
            {
                "code": "00",
                "message": "OK",
                "order_id": ref,
                "transaction_id": order["transaction_no"],
                "payment_url": f"{base}{NATIONAL_PAGE}{order['transaction_no']}",
            }
        )

    def _national_query(self, body: bytes) -> Response:
        fields = self._national_request(body)
        if fields is None:
            return self._national_answer({"code": "97", "message": "Invalid signature"})
        order = self.state.orders.get(str(fields.get("order_id", "")))
        if order is None:
            return self._national_answer({"code": "01", "message": "Not found"})
        result = national_result(self.state, order)
        result.pop("signature")
        return self._national_answer({"code": "00", "message": "OK", **result})

    # --- command line ------------------------------------------------------------------

    def banner(self) -> str:
        return (
            f"fake payment gateway on {self.url}\n"
            f"Start the backend with:\n  PAYMENT_FAKE_GATEWAY_URL={self.url}\nCtrl-C stops."
        )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.set_defaults(port=int(os.environ.get("PORT", str(cls.default_port))))
        parser.add_argument(
            "--callback-base",
            default=os.environ.get("FAKE_PAYMENT_CALLBACK_BASE", "http://127.0.0.1:8000"),
            help="Where the backend listens (VNPay's IPN URL is set per merchant)",
        )

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> FakePaymentGateway:
        config = {
            "vnpay_ipn_url": f"{args.callback_base}/api/v1/payments/gateways/vnpay/callback",
        }
        for name, variable in (
            ("vnpay_tmn_code", "PAYMENT_VNPAY_TMN_CODE"),
            ("vnpay_secret", "PAYMENT_VNPAY_HASH_SECRET"),
            ("national_merchant_id", "PAYMENT_NATIONAL_MERCHANT_ID"),
            ("national_secret", "PAYMENT_NATIONAL_SECRET"),
        ):
            if os.environ.get(variable):
                config[name] = os.environ[variable]
        return cls(args.host, args.port, **config)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        fields = json.loads(body)
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None


if __name__ == "__main__":
    main(FakePaymentGateway)
