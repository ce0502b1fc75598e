"""Fake national business registry: the wire format of auth/business_registry.py.

In tests: `with FakeBusinessRegistry() as registry: registry.register(...)`. As
its own process: `python -m fakes.business_registry --port 9310` (`--port 0`
picks a free port; the first line printed is the base URL); `POST /_fake/enterprises`
adds an enterprise, `POST /_fake/mode {"mode": "down"}` answers 503 everywhere.
"""

from __future__ import annotations

import argparse
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

DEFAULT_API_KEY = "dev-registry-key"


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class FakeBusinessRegistry:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str = DEFAULT_API_KEY):
        self.api_key = api_key
        self.mode = ""
        self.requests = 0
        self._lock = threading.Lock()
        self._enterprises: dict[str, dict[str, Any]] = {}
        self._httpd = _Server((host, port), self._handler_class())

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeBusinessRegistry:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeBusinessRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def register(self, enterprise: dict[str, Any]) -> None:
        with self._lock:
            self._enterprises[enterprise["enterprise_code"]] = enterprise

    def reset(self) -> None:
        with self._lock:
            self._enterprises = {}
            self.mode = ""
            self.requests = 0

    def _answer(self, path: str, api_key: str) -> tuple[int, dict[str, Any]]:
        if self.mode == "down":
            return 503, {"error": "unavailable"}
        if not hmac.compare_digest(api_key, self.api_key):
            return 401, {"error": "unauthorized"}
        parts = path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "enterprises":
            return 404, {"error": "not_found"}
        with self._lock:
            self.requests += 1
            enterprise = self._enterprises.get(parts[1])
        if enterprise is None:
            return 404, {"error": "not_found"}
        return 200, enterprise

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                self._reply(*registry._answer(path, self.headers.get("X-API-Key", "")))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = None
                if not isinstance(body, dict):
                    self._reply(400, {"error": "a JSON object is expected"})
                    return
                path = urlsplit(self.path).path
                if path == "/_fake/enterprises":
                    registry.register(body)
                elif path == "/_fake/mode":
                    registry.mode = str(body.get("mode", ""))
                elif path == "/_fake/reset":
                    registry.reset()
                else:
                    self._reply(404, {"error": "not_found"})
                    return
                self._reply(200, {"ok": True})

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9310, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args()
    registry = FakeBusinessRegistry(args.host, args.port, api_key=args.api_key)
    registry.register(demo_enterprise())
    print(registry.base_url, flush=True)  # noqa: T201 - the first line is the base URL
    print(  # noqa: T201 - the CLI's output
        f"Fake business registry. Start the backend with:\n  BUSINESS_REGISTRY_URL="
        f"{registry.base_url} BUSINESS_REGISTRY_API_KEY={args.api_key}\nCtrl-C stops.",
        flush=True,
    )
    try:
        registry._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        registry._httpd.server_close()


if __name__ == "__main__":
    main()
