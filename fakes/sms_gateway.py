"""A loopback stand-in for an eSMS.vn-style brand-name SMS gateway.

Speaks `SendMultipleMessage_V4_post_json`: JSON in with ApiKey, SecretKey,
Phone, Content, Brandname, SmsType; JSON out with CodeResult "100" and SMSID on
success, or another CodeResult and ErrorMessage:
  101 wrong ApiKey/SecretKey, 103 not enough balance, 104 brand name not
  registered, 99 unknown error (also `force_code`).
Tests can also make it answer an HTTP error page (`http_status = 502`), a body
that is not JSON (`garbage = True`), or too slowly (`delay`), through the fault
modes of fakes/server.py.

Run it for the app:  python -m fakes.sms_gateway --port 9098
(then SMS_BACKEND=http SMS_HTTP_URL=<the URL it prints> and the keys it prints).
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fakes.server import FakeServer, Fault, Request, Response, json_response, main

PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"


class FakeGateway(FakeServer):
    name = "fake-sms-gateway"
    default_port = 9098
    not_json_body = b"<html>maintenance</html>"

    def __init__(
        self,
        api_key: str = "test-api-key",
        secret_key: str = "test-secret",  # noqa: S107  # nosec B107 # a fake's own key
        brandname: str = "DVCONG",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.secret_key = secret_key
        self.brandname = brandname
        self.balance = 1000
        self.force_code: str | None = None  # e.g. "99"

    @property
    def url(self) -> str:
        return f"{self.base_url}{PATH}"

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The JSON bodies received on the send path, in order (`{}` for one not JSON)."""
        with self.lock:
            return [
                entry["body"] if isinstance(entry["body"], dict) else {}
                for entry in self.requests
                if entry["path"] == PATH
            ]

    # The gateway's failure modes, as switches (persistent fault modes of the server).
    @property
    def http_status(self) -> int:
        mode = self.fault_mode
        return mode.status if mode is not None and mode.kind == "error" else 200

    @http_status.setter
    def http_status(self, status: int) -> None:
        self.fault_mode = None if status == 200 else Fault("error", status=status)

    @property
    def garbage(self) -> bool:
        return self.fault_mode is not None and self.fault_mode.kind == "not_json"

    @garbage.setter
    def garbage(self, value: bool) -> None:
        self.fault_mode = Fault("not_json") if value else None

    def error_response(self, status: int, code: str) -> Response:
        return self._error(code or "99", "Unknown error", status)

    @staticmethod
    def _error(code: str, message: str, status: int = 200) -> Response:
        return json_response(status, {"CodeResult": code, "ErrorMessage": message})

    def handle(self, request: Request) -> Response | None:
        if request.method != "POST" or request.path != PATH:
            return json_response(404, {"CodeResult": "99", "ErrorMessage": "Not found"})
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if self.force_code:
            return self._error(self.force_code, "Unknown error")
        if body.get("ApiKey") != self.api_key or body.get("SecretKey") != self.secret_key:
            return self._error("101", "Authorize Failed")
        if body.get("Brandname") != self.brandname:
            return self._error("104", "Brandname is not registered")
        if body.get("SmsType") != "2" or not body.get("Phone") or not body.get("Content"):
            return self._error("99", "Invalid parameters")
        with self.lock:
            if self.balance <= 0:
                return self._error("103", "Not enough balance")
            self.balance -= 1
        if self.verbose:
            print(f"[{self.name}] {body['Phone']}: {body['Content']}", flush=True)  # noqa: T201
        answer = {"CodeResult": "100", "CountRegenerate": 0, "SMSID": str(uuid.uuid4())}
        return json_response(200, answer)

    def banner(self) -> str:
        return (
            f"Fake SMS gateway listening. Start the backend with:\n"
            f"  SMS_BACKEND=http SMS_HTTP_URL={self.url} SMS_API_KEY={self.api_key} "
            f"SMS_SECRET_KEY={self.secret_key} SMS_BRANDNAME={self.brandname}\n"
            "Ctrl-C stops."
        )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--api-key", default="test-api-key")
        parser.add_argument("--secret-key", default="test-secret")
        parser.add_argument("--brandname", default="DVCONG")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> FakeGateway:
        return cls(args.api_key, args.secret_key, args.brandname, args.host, args.port)


@contextmanager
def running_gateway(
    api_key: str = "test-api-key",
    secret_key: str = "test-secret",  # noqa: S107  # nosec B107 # a fake's own key
    brandname: str = "DVCONG",
) -> Iterator[FakeGateway]:
    with FakeGateway(api_key, secret_key, brandname) as gateway:
        yield gateway


if __name__ == "__main__":
    main(FakeGateway)
