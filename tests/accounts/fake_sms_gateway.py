"""A loopback stand-in for an eSMS.vn-style brand-name SMS gateway.

Speaks `SendMultipleMessage_V4_post_json`: JSON in with ApiKey, SecretKey,
Phone, Content, Brandname, SmsType; JSON out with CodeResult "100" and SMSID on
success, or another CodeResult and ErrorMessage:
  101 wrong ApiKey/SecretKey, 103 not enough balance, 104 brand name not
  registered, 99 unknown error.
Tests can also make it answer an HTTP error, garbage, or too slowly.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"


class FakeGateway:
    def __init__(self, api_key: str, secret_key: str, brandname: str) -> None:
        self.api_key = api_key
        self.secret_key = secret_key
        self.brandname = brandname
        self.balance = 1000
        self.requests: list[dict[str, Any]] = []
        self.http_status = 200  # e.g. 502 to simulate an outage
        self.delay = 0.0  # seconds before answering (timeouts)
        self.garbage = False
        self.force_code: str | None = None  # e.g. "99"
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def reply(self, body: dict[str, Any]) -> tuple[int, bytes]:
        self.requests.append(body)
        if self.delay:
            time.sleep(self.delay)
        if self.http_status != 200:
            return self.http_status, b"<html>Bad gateway</html>"
        if self.garbage:
            return 200, b"<html>maintenance</html>"
        if self.force_code:
            return 200, self._error(self.force_code, "Unknown error")
        if body.get("ApiKey") != self.api_key or body.get("SecretKey") != self.secret_key:
            return 200, self._error("101", "Authorize Failed")
        if body.get("Brandname") != self.brandname:
            return 200, self._error("104", "Brandname is not registered")
        if body.get("SmsType") != "2" or not body.get("Phone") or not body.get("Content"):
            return 200, self._error("99", "Invalid parameters")
        if self.balance <= 0:
            return 200, self._error("103", "Not enough balance")
        self.balance -= 1
        answer = {"CodeResult": "100", "CountRegenerate": 0, "SMSID": str(uuid.uuid4())}
        return 200, json.dumps(answer).encode()

    @staticmethod
    def _error(code: str, message: str) -> bytes:
        return json.dumps({"CodeResult": code, "ErrorMessage": message}).encode()


def _handler(gateway: FakeGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != PATH:
                self.send_response(404)
                self.end_headers()
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                body = {}
            status, payload = gateway.reply(body)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_gateway(
    api_key: str = "test-api-key", secret_key: str = "test-secret", brandname: str = "DVCONG"
) -> Iterator[FakeGateway]:
    gateway = FakeGateway(api_key, secret_key, brandname)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(gateway))
    server.daemon_threads = True
    server.block_on_close = False  # a deliberately slow reply must not hold teardown
    gateway.server = server
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
