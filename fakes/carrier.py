"""A loopback VNPost: a threaded HTTP server speaking the postal adapter's wire format.

It keeps orders (create-or-get by order number: `POST /v1/orders`), answers
`GET /v1/orders/{waybill}`, `POST /v1/orders/{waybill}/collect` and `/cancel`,
records every request (with the `X-API-Key` it carried), and answers errors as
VNPost does: `{"error": {"code", "message"}}` with an HTTP status (401
UNAUTHORIZED, 400 INVALID_REQUEST / INVALID_ADDRESS, 404 ORDER_NOT_FOUND, 409
ORDER_NOT_CANCELLABLE). `fail_next` makes it fail the next requests the ways the
real carrier does (fakes/server.py): an error with a carrier code, a 5xx page,
a hang (client timeout), a hang *after* creating the order (`hang_after_create`:
the answer is lost but the order exists), or a body that is not JSON.

Run it for the app:  python -m fakes.carrier --port 9097
(then POSTAL_VNPOST_BASE_URL=<the URL it prints> POSTAL_VNPOST_API_KEY=test-vnpost-key).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from fakes.server import FakeServer, Request, Response, json_response, main

API_KEY = "test-vnpost-key"
ORDER_PATH = re.compile(r"/v1/orders/([A-Z0-9]+)(/collect|/cancel)?")
REQUIRED_FIELDS = ("order_number", "reference", "sender", "receiver", "cod_amount")
# Fault kinds under the carrier's own names.
KIND_ALIASES = {"hang_after_create": "lose_answer"}


class FakeCarrier(FakeServer):
    name = "fake-carrier"
    default_port = 9097
    not_json_body = b"OK"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = API_KEY) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.orders: dict[str, dict[str, Any]] = {}  # by order number
        self.next_waybill = 1

    @property
    def url(self) -> str:
        return self.base_url

    def fail_next(
        self,
        kind: str = "error",
        *,
        times: int = 1,
        status: int = 503,
        code: str = "",
        path_contains: str = "",
    ) -> None:
        super().fail_next(
            KIND_ALIASES.get(kind, kind),
            times=times,
            status=status,
            code=code,
            path_contains=path_contains,
        )

    def by_waybill(self, waybill: str) -> dict[str, Any] | None:
        with self.lock:
            return next((o for o in self.orders.values() if o["waybill"] == waybill), None)

    def log_entry(self, request: Request) -> dict[str, Any]:
        return {"api_key": request.headers.get("x-api-key")}

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.orders.clear()
            self.next_waybill = 1

    def error_response(self, status: int, code: str, message: str = "") -> Response:
        return json_response(status, {"error": {"code": code, "message": message or code}})

    def handle(self, request: Request) -> Response | None:
        if request.header("X-API-Key") != self.api_key:
            return self.error_response(401, "UNAUTHORIZED", "bad API key")
        try:
            body = request.json()
        except ValueError:
            return self.error_response(400, "INVALID_REQUEST", "body is not JSON")
        if request.method == "POST" and request.path == "/v1/orders":
            return self._create(body)
        match = ORDER_PATH.fullmatch(request.path)
        if match is None:
            return self.error_response(404, "NOT_FOUND")
        with self.lock:
            order = self.by_waybill(match.group(1))
            if order is None:
                return self.error_response(404, "ORDER_NOT_FOUND")
            return self._order_action(request.method, match.group(2), order)

    def _order_action(self, method: str, action: str | None, order: dict[str, Any]) -> Response:
        if method == "GET" and action is None:
            fields = ("waybill", "order_number", "status", "events")
            return json_response(200, {name: order[name] for name in fields})
        if method == "POST" and action == "/collect":
            if order["status"] == "cancelled":
                return self.error_response(409, "ORDER_NOT_CANCELLABLE")
            order["status"] = "awaiting_collection"
            return json_response(200, {"waybill": order["waybill"], "status": order["status"]})
        if method == "POST" and action == "/cancel":
            if order["status"] not in {"created", "awaiting_collection", "cancelled"}:
                return self.error_response(409, "ORDER_NOT_CANCELLABLE", "already collected")
            order["status"] = "cancelled"
            return json_response(200, {"waybill": order["waybill"], "status": "cancelled"})
        return self.error_response(405, "METHOD_NOT_ALLOWED")

    def _create(self, body: Any) -> Response:
        if not isinstance(body, dict) or any(k not in body for k in REQUIRED_FIELDS):
            return self.error_response(400, "INVALID_REQUEST", "missing fields")
        address = body["receiver"].get("address", {})
        if not re.fullmatch(r"\d{5}", str(address.get("commune_code", ""))):
            return self.error_response(400, "INVALID_ADDRESS", "unknown commune")
        with self.lock:
            existing = self.orders.get(body["order_number"])
            if existing is None:
                waybill = f"EB{self.next_waybill:09d}VN"
                self.next_waybill += 1
                existing = {
                    "waybill": waybill,
                    "order_number": body["order_number"],
                    "status": "created",
                    "payload": body,
                    "events": [],
                }
                self.orders[body["order_number"]] = existing
                status = 201
            else:
                status = 200
        if self.verbose:
            print(f"[{self.name}] {status} {existing['waybill']}", flush=True)  # noqa: T201
        fields = ("waybill", "order_number", "status")
        return json_response(status, {name: existing[name] for name in fields})

    def banner(self) -> str:
        return (
            "Fake VNPost listening. Start the backend with:\n"
            f"  POSTAL_VNPOST_BASE_URL={self.url} POSTAL_VNPOST_API_KEY={self.api_key}\n"
            "Ctrl-C stops."
        )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--api-key", default=API_KEY)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> FakeCarrier:
        return cls(args.host, args.port, args.api_key)


if __name__ == "__main__":
    main(FakeCarrier)
