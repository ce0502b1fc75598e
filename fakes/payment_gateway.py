"""A loopback payment gateway speaking VNPay's and the national platform's wire formats.

    python -m fakes.payment_gateway --port 8910 --callback-base http://127.0.0.1:8000

It checks the merchant's signatures (and refuses what is badly signed, as the
real gateways do), shows a payment page, and when "the citizen pays" (GET the
page's pay link) it redirects the browser back to the merchant's return URL
with a signed result and calls the merchant's callback (IPN) in the background,
retrying until the merchant answers 00 or 02. It answers status queries
(VNPay querydr, the national platform's query). Faults can be switched on over
`POST /_control/config`: lose every callback, send each one N more times at
once, delay them (slow callbacks). `GET /_control/log` shows orders and every
callback attempt with the merchant's answer.

The signing code here is written independently of payments/gateways/*: a bug
in one is caught by the other. Plumbing is self-contained (stdlib only).
"""

from __future__ import annotations

import argparse
import contextlib
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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html lang=vi><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    ).encode()


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, body: Any) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _redirect(self, location: str) -> None:
            self._send(302, b"", "text/plain", Location=location)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _base(self) -> str:
            host = self.headers.get("Host") or "127.0.0.1"
            return f"http://{host}"

        # -- routes
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            if url.path == "/paymentv2/vpcpay.html":
                return self._vnpay_checkout(query)
            if url.path == "/paymentv2/pay":
                return self._pay(query.get("ref", ""), query)
            if url.path.startswith("/national/pay/"):
                parts = url.path.split("/")
                tid = parts[3] if len(parts) > 3 else ""
                order = next((o for o in state.orders.values() if o["transaction_no"] == tid), None)
                if order is None:
                    return self._send(404, _page("Không tìm thấy giao dịch", ""), "text/html")
                if len(parts) > 4 and parts[4] == "confirm":
                    return self._pay(order["ref"], query)
                return self._payment_page(order)
            if url.path == "/_control/log":
                with state.lock:
                    return self._json(
                        200, {"orders": list(state.orders.values()), "callbacks": state.callbacks}
                    )
            return self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            body = self._body()
            if url.path == "/merchant_webapi/api/transaction":
                return self._vnpay_querydr(body)
            if url.path == "/national/api/v1/transactions":
                return self._national_init(body)
            if url.path == "/national/api/v1/transactions/query":
                return self._national_query(body)
            if url.path == "/_control/config":
                changes = json.loads(body or b"{}")
                with state.lock:
                    for key, value in changes.items():
                        if not hasattr(state.config, key):
                            return self._json(422, {"error": f"unknown setting {key}"})
                        setattr(state.config, key, value)
                return self._json(200, state.config.__dict__)
            if url.path == "/_control/reset":
                with state.lock:
                    state.orders.clear()
                    state.callbacks.clear()
                    state.config = Config(**json.loads(body or b"{}"))
                return self._json(200, state.config.__dict__)
            return self._json(404, {"error": "not found"})

        # -- VNPay
        def _vnpay_checkout(self, query: dict[str, str]) -> None:
            cfg = state.config
            given = query.get("vnp_SecureHash", "")
            if not hmac.compare_digest(given, vnpay_hash(cfg.vnpay_secret, query)):
                return self._send(400, _page("Sai chữ ký (code=97)", ""), "text/html")
            if query.get("vnp_TmnCode") != cfg.vnpay_tmn_code:
                return self._send(
                    400, _page("Website chưa được phê duyệt (code=02)", ""), "text/html"
                )
            required = ("vnp_Amount", "vnp_TxnRef", "vnp_ReturnUrl", "vnp_Version", "vnp_Command")
            if any(not query.get(k) for k in required) or query["vnp_Command"] != "pay":
                return self._send(400, _page("Dữ liệu không hợp lệ (code=03)", ""), "text/html")
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

        def _payment_page(self, order: dict[str, Any]) -> None:
            if order["gateway"] == "vnpay":
                link = f"/paymentv2/pay?ref={urllib.parse.quote(order['ref'])}"
            else:
                link = f"/national/pay/{order['transaction_no']}/confirm?x=1"
            body = (
                f"<p>Số tiền: {order['amount']:,} VND</p>"
                f"<p><a id=pay href='{html.escape(link)}&outcome=success'>Thanh toán</a> "
                f"<a id=cancel href='{html.escape(link)}&outcome=cancel'>Hủy</a></p>"
            )
            return self._send(200, _page("Cổng thanh toán (giả lập)", body), "text/html")

        def _pay(self, ref: str, query: dict[str, str]) -> None:
            outcome = query.get("outcome", "success")
            with state.lock:
                order = state.orders.get(ref)
                if order is None:
                    return self._send(404, _page("Không tìm thấy giao dịch", ""), "text/html")
                expire = order.get("expire_date", "")
                if order["status"] == "pending":
                    if expire and vn_now() > expire and outcome == "success":
                        outcome = "fail"  # VNPay: "giao dịch đã quá thời gian chờ thanh toán"
                    order["status"] = {"success": "paid", "cancel": "cancelled"}.get(
                        outcome, "failed"
                    )
                    order["pay_date"] = vn_now()
                    order["paid_at_iso"] = dt.datetime.now(tz=VN).isoformat()
                    if query.get("amount", "").isdigit():  # a test of a tampered total
                        order["reported_amount"] = int(query["amount"])
            send_callbacks(state, order)
            if order["gateway"] == "vnpay":
                params = vnpay_result(state, order)
                target = order["params"]["vnp_ReturnUrl"]
            else:
                fields = national_result(state, order)
                params = {k: str(v) for k, v in fields.items() if k != "bank_code"}
                params["signature"] = national_sign(
                    state.config.national_secret,
                    {k: v for k, v in fields.items() if k != "bank_code"},
                )
                target = order["params"]["return_url"]
            sep = "&" if "?" in target else "?"
            return self._redirect(f"{target}{sep}{urllib.parse.urlencode(params)}")

        def _vnpay_querydr(self, body: bytes) -> None:
            cfg = state.config
            try:
                req = json.loads(body)
            except ValueError:
                return self._json(400, {"vnp_ResponseCode": "03", "vnp_Message": "Invalid data"})
            names = [
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
            expected = vnpay_pipe_hash(cfg.vnpay_secret, [str(req.get(n, "")) for n in names])
            answer: dict[str, str] = {
                "vnp_ResponseId": os.urandom(8).hex(),
                "vnp_Command": "querydr",
                "vnp_TmnCode": str(req.get("vnp_TmnCode", "")),
                "vnp_TxnRef": str(req.get("vnp_TxnRef", "")),
                "vnp_Amount": "",
                "vnp_BankCode": "",
                "vnp_PayDate": "",
                "vnp_TransactionNo": "",
                "vnp_TransactionType": "01",
                "vnp_TransactionStatus": "",
                "vnp_OrderInfo": str(req.get("vnp_OrderInfo", "")),
                "vnp_PromotionCode": "",
                "vnp_PromotionAmount": "",
            }
            order = state.orders.get(str(req.get("vnp_TxnRef", "")))
            if not hmac.compare_digest(str(req.get("vnp_SecureHash", "")), expected):
                answer.update(vnp_ResponseCode="97", vnp_Message="Invalid Checksum")
            elif req.get("vnp_TmnCode") != cfg.vnpay_tmn_code:
                answer.update(vnp_ResponseCode="02", vnp_Message="Merchant is not active")
            elif order is None:
                answer.update(vnp_ResponseCode="91", vnp_Message="Transaction not found")
            else:
                status = {"pending": "01", "paid": "00", "cancelled": "02", "failed": "02"}
                answer.update(
                    vnp_ResponseCode="00",
                    vnp_Message="QueryDR Success",
                    vnp_Amount=str(order["reported_amount"] * 100),
                    vnp_BankCode="NCB",
                    vnp_PayDate=order["pay_date"],
                    vnp_TransactionNo=order["transaction_no"],
                    vnp_TransactionStatus=status[order["status"]],
                )
            pipe = [
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
            answer["vnp_SecureHash"] = vnpay_pipe_hash(
                cfg.vnpay_secret, [answer.get(n, "") for n in pipe]
            )
            return self._json(200, answer)

        # -- national platform
        def _national_signed(self, body: bytes) -> dict[str, Any] | None:
            try:
                fields = json.loads(body)
            except ValueError:
                return None
            if not isinstance(fields, dict):
                return None
            given = str(fields.get("signature", ""))
            if not hmac.compare_digest(given, national_sign(state.config.national_secret, fields)):
                return None
            if fields.get("merchant_id") != state.config.national_merchant_id:
                return None
            return fields

        def _national_answer(self, fields: dict[str, Any]) -> None:
            fields["signature"] = national_sign(state.config.national_secret, fields)
            return self._json(200, fields)

        def _national_init(self, body: bytes) -> None:
            fields = self._national_signed(body)
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
            return self._national_answer(
                {
                    "code": "00",
                    "message": "OK",
                    "order_id": ref,
                    "transaction_id": order["transaction_no"],
                    "payment_url": f"{self._base()}/national/pay/{order['transaction_no']}",
                }
            )

        def _national_query(self, body: bytes) -> None:
            fields = self._national_signed(body)
            if fields is None:
                return self._national_answer({"code": "97", "message": "Invalid signature"})
            order = state.orders.get(str(fields.get("order_id", "")))
            if order is None:
                return self._national_answer({"code": "01", "message": "Not found"})
            result = national_result(state, order)
            result.pop("signature")
            return self._national_answer({"code": "00", "message": "OK", **result})

    return Handler


class FakePaymentGateway:
    """Start in a thread (tests) or as its own process (`main`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        self.state = State(config=Config(**config))
        self.server = ThreadingHTTPServer((host, port), make_handler(self.state))
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port!s}"

    def start(self) -> FakePaymentGateway:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        # shutdown() waits for serve_forever to end: only when it was started, or it
        # never returns (a stack that failed before starting its fakes still closes).
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(timeout=10)
            self.thread = None
        self.server.server_close()

    def wait_for_callbacks(self, timeout: float = 10.0) -> bool:
        """Until every callback delivery started so far has finished (or timeout)."""
        with self.state.idle:
            return self.state.idle.wait_for(lambda: self.state.in_flight == 0, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8910")))
    parser.add_argument(
        "--callback-base",
        default=os.environ.get("FAKE_PAYMENT_CALLBACK_BASE", "http://127.0.0.1:8000"),
        help="Where the backend listens (VNPay's IPN URL is set per merchant)",
    )
    args = parser.parse_args()
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
    gateway = FakePaymentGateway(args.host, args.port, **config)
    print(f"fake payment gateway on {gateway.url}", flush=True)  # noqa: T201
    with contextlib.suppress(KeyboardInterrupt):
        gateway.server.serve_forever()


if __name__ == "__main__":
    main()
