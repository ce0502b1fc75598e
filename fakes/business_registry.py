"""Fake national business registry: the wire format of auth/business_registry.py.

`GET /enterprises/{tax_code}` with the `X-API-Key` header answers the enterprise
(200) or `{"error": "not_found"}` (404); a wrong key gets `{"error":
"unauthorized"}` (401). `mode = "down"` answers `{"error": "unavailable"}` (503)
everywhere (a fault mode of fakes/server.py, as are `fail_next` and `delay`).

In tests: `with FakeBusinessRegistry() as registry: registry.register(...)`. As
its own process: `python -m fakes.business_registry --port 9310` (`--port 0`
picks a free port; the first line printed is the base URL), with its demo
enterprise; besides the controls every fake has, `POST /_fake/enterprises` adds
an enterprise and `POST /_fake/mode {"mode": "down"}` answers 503 everywhere.
"""

from __future__ import annotations

import argparse
import hmac
from typing import Any

from fakes.server import FakeServer, Fault, Request, Response, json_response, main

DEFAULT_API_KEY = "dev-registry-key"
MODES = ("", "down")


def demo_enterprise() -> dict[str, Any]:
    return {
        "enterprise_code": "0100109106",
        "name": "CÔNG TY TNHH THƯƠNG MẠI AN PHÚ",
        "address": "Số 1 Tràng Tiền, Phường Hoàn Kiếm, Thành phố Hà Nội",
        "status": "active",
        "legal_representatives": [
            {"full_name": "Phạm Minh Châu", "citizen_id": "001190012345", "title": "Giám đốc"}
        ],
    }


def _down() -> Fault:
    return Fault("error", status=503, code="unavailable")


class FakeBusinessRegistry(FakeServer):
    name = "fake-business-registry"
    default_port = 9310

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str = DEFAULT_API_KEY):
        super().__init__(host, port)
        self.api_key = api_key
        self._enterprises: dict[str, dict[str, Any]] = {}

    def register(self, enterprise: dict[str, Any]) -> None:
        with self.lock:
            self._enterprises[enterprise["enterprise_code"]] = enterprise

    # The registry down, as a switch (a persistent fault mode of the server).
    @property
    def mode(self) -> str:
        return "down" if self.fault_mode == _down() else ""

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.fault_mode = _down() if mode == "down" else None

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._enterprises = {}

    def error_response(self, status: int, code: str) -> Response:
        return json_response(status, {"error": code})

    def handle(self, request: Request) -> Response | None:
        if request.method != "GET":
            return self.error_response(404, "not_found")
        given = request.header("X-API-Key").encode()
        if not hmac.compare_digest(given, self.api_key.encode()):
            return self.error_response(401, "unauthorized")
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "enterprises":
            return self.error_response(404, "not_found")
        with self.lock:
            enterprise = self._enterprises.get(parts[1])
        if enterprise is None:
            return self.error_response(404, "not_found")
        return json_response(200, enterprise)

    def control(self, request: Request) -> Response | None:
        if request.method == "POST" and request.path == "/_fake/enterprises":
            self.register(request.json_object())
        elif request.method == "POST" and request.path == "/_fake/mode":
            self.mode = str(request.json_object().get("mode", ""))
        else:
            return None
        return json_response(200, {"ok": True})

    # --- command line ------------------------------------------------------------------

    def banner(self) -> str:
        return (
            f"{self.base_url}\n"  # the first line is the base URL
            "Fake business registry. Start the backend with:\n"
            f"  BUSINESS_REGISTRY_URL={self.base_url} BUSINESS_REGISTRY_API_KEY={self.api_key}\n"
            "Ctrl-C stops."
        )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--api-key", default=DEFAULT_API_KEY)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> FakeBusinessRegistry:
        registry = cls(args.host, args.port, api_key=args.api_key)
        registry.register(demo_enterprise())
        return registry


if __name__ == "__main__":
    main(FakeBusinessRegistry)
