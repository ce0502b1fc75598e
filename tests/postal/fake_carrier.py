"""A loopback VNPost: a threaded HTTP server speaking the adapter's wire format.

It keeps orders (create-or-get by order number), records every request, and
can be told to fail the next requests the ways the real carrier does: an HTTP
error with a carrier error code, a 5xx, a hang (client timeout), or a hang
*after* creating the order (the response is lost but the order exists).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "test-vnpost-key"


@dataclass
class Failure:
    kind: str  # "error" | "hang" | "hang_after_create" | "not_json"
    status: int = 503
    code: str = ""
    path_contains: str = ""


@dataclass
class CarrierState:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by order number
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures: deque[Failure] = field(default_factory=deque)
    hang_seconds: float = 2.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_waybill: int = 1

    def by_waybill(self, waybill: str) -> dict[str, Any] | None:
        return next((o for o in self.orders.values() if o["waybill"] == waybill), None)

    def paths(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.requests]


class FakeCarrier:
    def __init__(self) -> None:
        self.state = CarrierState()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def _error(self, status: int, code: str, message: str = "") -> None:
                self._send(status, {"error": {"code": code, "message": message or code}})

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                with state.lock:
                    state.requests.append(
                        {
                            "method": method,
                            "path": self.path,
                            "body": body,
                            "api_key": self.headers.get("X-API-Key"),
                        }
                    )
                    failure = None
                    if state.failures and state.failures[0].path_contains in self.path:
                        failure = state.failures.popleft()
                if failure is not None and failure.kind == "hang":
                    time.sleep(state.hang_seconds)
                    return self._error(504, "GATEWAY_TIMEOUT")
                if failure is not None and failure.kind == "error":
                    if failure.status >= 500 and not failure.code:
                        return self._send(failure.status, None, raw=b"<html>Bad gateway</html>")
                    return self._error(failure.status, failure.code)
                if failure is not None and failure.kind == "not_json":
                    return self._send(200, None, raw=b"OK")
                if self.headers.get("X-API-Key") != API_KEY:
                    return self._error(401, "UNAUTHORIZED", "bad API key")
                self._route(method, body, failure)
                return None

            def _route(self, method: str, body: Any, failure: Failure | None) -> None:
                if method == "POST" and self.path == "/v1/orders":
                    return self._create(body, failure)
                match = re.fullmatch(r"/v1/orders/([A-Z0-9]+)(/collect|/cancel)?", self.path)
                if match is None:
                    return self._error(404, "NOT_FOUND")
                with state.lock:
                    order = state.by_waybill(match.group(1))
                if order is None:
                    return self._error(404, "ORDER_NOT_FOUND")
                action = match.group(2)
                if method == "GET" and action is None:
                    return self._send(
                        200,
                        {
                            "waybill": order["waybill"],
                            "order_number": order["order_number"],
                            "status": order["status"],
                            "events": order["events"],
                        },
                    )
                if method == "POST" and action == "/collect":
                    if order["status"] == "cancelled":
                        return self._error(409, "ORDER_NOT_CANCELLABLE")
                    order["status"] = "awaiting_collection"
                    return self._send(200, {"waybill": order["waybill"], "status": order["status"]})
                if method == "POST" and action == "/cancel":
                    if order["status"] not in {"created", "awaiting_collection", "cancelled"}:
                        return self._error(409, "ORDER_NOT_CANCELLABLE", "already collected")
                    order["status"] = "cancelled"
                    return self._send(200, {"waybill": order["waybill"], "status": "cancelled"})
                return self._error(405, "METHOD_NOT_ALLOWED")

            def _create(self, body: Any, failure: Failure | None) -> None:
                required = ["order_number", "reference", "sender", "receiver", "cod_amount"]
                if not isinstance(body, dict) or any(k not in body for k in required):
                    return self._error(400, "INVALID_REQUEST", "missing fields")
                address = body["receiver"].get("address", {})
                if not re.fullmatch(r"\d{5}", str(address.get("commune_code", ""))):
                    return self._error(400, "INVALID_ADDRESS", "unknown commune")
                with state.lock:
                    existing = state.orders.get(body["order_number"])
                    if existing is None:
                        waybill = f"EB{state.next_waybill:09d}VN"
                        state.next_waybill += 1
                        existing = {
                            "waybill": waybill,
                            "order_number": body["order_number"],
                            "status": "created",
                            "payload": body,
                            "events": [],
                        }
                        state.orders[body["order_number"]] = existing
                        status = 201
                    else:
                        status = 200
                if failure is not None and failure.kind == "hang_after_create":
                    time.sleep(state.hang_seconds)
                    return None
                return self._send(
                    status,
                    {
                        "waybill": existing["waybill"],
                        "order_number": existing["order_number"],
                        "status": existing["status"],
                    },
                )

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeCarrier:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(
        self,
        kind: str = "error",
        *,
        times: int = 1,
        status: int = 503,
        code: str = "",
        path_contains: str = "",
    ) -> None:
        for _ in range(times):
            self.state.failures.append(Failure(kind, status, code, path_contains))

    @property
    def orders(self) -> dict[str, dict[str, Any]]:
        return self.state.orders
