"""A fake FCM HTTP v1 server on loopback, for tests and for developers.

It speaks the wire format firebase-admin uses:

- `POST /token`: Google's OAuth2 token endpoint for service accounts (a signed
  JWT `assertion`, verified against the key this server generated);
- `POST /v1/projects/{project}/messages:send`: the FCM v1 send call, answering
  `{"name": "projects/{project}/messages/{id}"}` or FCM's error bodies
  (`{"error": {"code", "message", "status", "details": [FcmError]}}`) for
  UNREGISTERED (404), SENDER_ID_MISMATCH (403), INVALID_ARGUMENT (400),
  QUOTA_EXCEEDED (429 with Retry-After), UNAVAILABLE (503) and INTERNAL (500);
- `GET .../serviceAccounts/{email}/allowedLocations`: google-auth's regional
  access boundary lookup, answered with "no boundary" (see `rab_endpoint`).

Outcomes are scripted per token (`server.script(token, "UNAVAILABLE", "ok")`) or
for every token at once (`server.outage`, served in turn while not empty); a
token whose name starts with an error code (`UNREGISTERED-phone-1`) always gets
that error; messages over 4096 bytes or with non-string data values get
INVALID_ARGUMENT like the real service. `faults=0.05` answers that share of the
other sends with QUOTA_EXCEEDED (429, Retry-After) or UNAVAILABLE (503), drawn
from a random generator seeded with `seed`, so a run can be repeated.

Every send is recorded (`attempts`: token, outcome, time and message; a send that
a `lose_answer` fault handled but never answered is marked `answer_lost`), and so is
the most sends handled at once (`peak_concurrency`; `in_flight` now, `delay`
holds each send before it is answered). A process that did not start the server
reads them over HTTP (fakes/server.py): `GET /_fake/stats` (counts),
`GET /_fake/log` (the attempts) and `POST /_fake/reset` (forget them).

Run it for the app:  python -m fakes.fcm --port 9099
and start the backend with the environment it prints (`backend_env`).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import random
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fakes.server import FakeServer, Fault, Request, Response, json_response, main

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
MAX_PAYLOAD_BYTES = 4096
JSON_UTF8 = "application/json; charset=UTF-8"

# errorCode -> (HTTP status, RPC status, message), as FCM answers them.
ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "QUOTA_EXCEEDED": (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests' of service fcm.googleapis.com.",
    ),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
}
# An HTTP status of a server fault (`fail_next`) -> the RPC status FCM gives it.
RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


# google-auth looks up a "regional access boundary" at a fixed Google host in a
# background thread; a backend process sends anything not on loopback into a
# closed local port instead.
BLACKHOLE_PROXY = "http://127.0.0.1:9"
# What a fault (`faults`) answers, either with equal odds.
FAULT_CODES = ("QUOTA_EXCEEDED", "UNAVAILABLE")


def backend_env(base_url: str, credentials: Path) -> dict[str, str]:
    """The environment that points a backend process (web, worker) at a fake FCM:
    the real firebase-admin code, with only its URLs changed. FCM's own is
    FCM_API_BASE; the OAuth2 token endpoint is the credential file's `token_uri`."""
    return {
        "PUSH_BACKEND": "fcm",
        "FCM_CREDENTIALS_FILE": str(credentials),
        "FCM_API_BASE": base_url,
        "HTTP_PROXY": BLACKHOLE_PROXY,
        "HTTPS_PROXY": BLACKHOLE_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
    }


@dataclass(frozen=True)
class Outcome:
    code: str = "ok"  # "ok" or a key of ERRORS
    retry_after: int | None = None  # seconds, for QUOTA_EXCEEDED / UNAVAILABLE


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _data_strings_only(message: dict[str, Any]) -> bool:
    data = message.get("data") or {}
    return isinstance(data, dict) and all(isinstance(v, str) for v in data.values())


def _send_path(path: str) -> str | None:
    """The project of a `/v1/projects/{project}/messages:send` path, else None."""
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[:2] == ["v1", "projects"] and parts[3] == "messages:send":
        return parts[2]
    return None


class FakeFcmServer(FakeServer):
    """Start with `start()` (or `with FakeFcmServer() as server:`); thread-safe.

    `faults`: share of sends (0..1) answered QUOTA_EXCEEDED (with `Retry-After:
    fault_retry_after`) or UNAVAILABLE, chosen by a generator seeded with `seed`;
    scripted, outage and token-named outcomes come first.
    """

    name = "fake-fcm"
    default_port = 9099
    log_bodies = False  # `attempts` keeps the messages

    def __init__(
        self,
        project_id: str = "demo-citizen",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        faults: float = 0.0,
        seed: int = 0,
        fault_retry_after: int = 1,
    ):
        if not 0.0 <= faults <= 1.0:
            raise ValueError("faults is a share of the sends, between 0 and 1")
        super().__init__(host, port)
        self.project_id = project_id
        self.faults = faults
        self.fault_retry_after = fault_retry_after
        # A test double that must repeat its choices, not a secret.
        self._random = random.Random(seed)  # noqa: S311  # nosec B311
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._scripts: dict[str, deque[Outcome]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._access_tokens: set[str] = set()
        self.outage: list[Outcome] = []  # served in turn to every send while not empty
        self.sent: list[dict[str, Any]] = []  # accepted messages ({"message": ..., "name": ...})
        self.attempts: list[dict[str, Any]] = []  # every send request, with its outcome
        self.token_requests = 0
        self.credentials_path: Path | None = None
        self._handling = threading.local()  # the attempt the current thread records

    # --- control ---------------------------------------------------------------

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    def script(self, token: str, *outcomes: str | Outcome) -> None:
        """The next answers for `token`, in order; then success."""
        with self.lock:
            for outcome in outcomes:
                self._scripts[token].append(
                    outcome if isinstance(outcome, Outcome) else Outcome(outcome)
                )

    def sent_to(self, token: str) -> list[dict[str, Any]]:
        with self.lock:
            return [item["message"] for item in self.sent if item["message"].get("token") == token]

    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [item["message"] for item in self.sent]

    def attempts_for(self, token: str) -> list[str]:
        with self.lock:
            return [a["outcome"] for a in self.attempts if a["token"] == token]

    def stats(self) -> dict[str, Any]:
        """Counts of what was received (also served as `GET /_fake/stats`)."""
        with self.lock:
            outcomes: dict[str, int] = defaultdict(int)
            for attempt in self.attempts:
                outcomes[attempt["outcome"]] += 1
            return {
                "requests": len(self.attempts),
                "accepted": len(self.sent),
                "answers_lost": sum(1 for a in self.attempts if a.get("answer_lost")),
                "outcomes": dict(outcomes),
                "token_requests": self.token_requests,
                "in_flight": self.in_flight,
                "peak_concurrency": self.peak_concurrency,
                "first_at": self.attempts[0]["at"] if self.attempts else None,
                "last_at": self.attempts[-1]["at"] if self.attempts else None,
            }

    def log(self) -> dict[str, Any]:
        with self.lock:
            return {"attempts": list(self.attempts), "requests": list(self.requests)}

    def reset(self) -> None:
        """Forget the sends received so far (access tokens stay valid)."""
        with self.lock:
            super().reset()
            self.sent.clear()
            self.attempts.clear()
            self.outage.clear()

    def rab_endpoint(self, service_account_email: str) -> str:
        """Stand-in for google-auth's `get_service_account_rab_endpoint`, whose host is
        fixed to iamcredentials.googleapis.com: patch it with this to keep the lookup here."""
        account = service_account_email
        return f"{self.base_url}/v1/projects/-/serviceAccounts/{account}/allowedLocations"

    def service_account_info(self) -> dict[str, str]:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "fake-key-1",
            "private_key": pem,
            "client_email": f"firebase-adminsdk@{self.project_id}.iam.gserviceaccount.com",
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
        }

    def write_credentials(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.service_account_info(), indent=2), encoding="utf-8")
        path.chmod(0o600)
        return path

    # --- behaviour ---------------------------------------------------------------

    def counts_in_flight(self, request: Request) -> bool:
        return request.method == "POST" and _send_path(request.path) is not None

    def error_response(self, status: int, code: str) -> Response:
        if code in ERRORS:
            status, rpc_status, text = ERRORS[code]
            return json_response(status, _error(status, rpc_status, text, code), None, JSON_UTF8)
        rpc_status = RPC_STATUS.get(status, "UNKNOWN")
        return json_response(
            status, _error(status, rpc_status, code or rpc_status), None, JSON_UTF8
        )

    def _faulty_response(self, fault: Fault, request: Request) -> Response | None:
        if fault.kind != "lose_answer":
            return super()._faulty_response(fault, request)
        # As the base class does (handled, then no answer), and the send is marked in
        # `attempts`: FCM acted on it, the client never learns (`answer_lost`).
        self._handling.attempt = None
        self.handle(request)
        attempt = self._handling.attempt
        if attempt is not None:
            with self.lock:
                attempt["answer_lost"] = True
        self.hold(self.hang_seconds)
        return None

    def handle(self, request: Request) -> Response | None:
        if request.method == "GET" and request.path.endswith("/allowedLocations"):
            # google-auth's regional access boundary lookup (IAM credentials API).
            return self._json(200, {"encodedLocations": "0x0", "locations": []})
        if request.method == "POST" and request.path == "/token":
            return self._json(*self._issue_access_token(request.form()))
        project = _send_path(request.path)
        if request.method == "POST" and project is not None:
            try:
                body = request.json() or {}
            except ValueError:
                return self._json(400, _invalid("body", "Invalid JSON payload."))
            status, payload, headers = self._send(project, request.header("Authorization"), body)
            return self._json(status, payload, headers)
        return self._json(404, _error(404, "NOT_FOUND", "Not found."))

    @staticmethod
    def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        return json_response(status, body, headers, JSON_UTF8)

    def _next_outcome(self, token: str) -> Outcome:
        with self.lock:
            queue = self._scripts.get(token)
            if queue:
                return queue.popleft()
            if self.outage:
                return self.outage.pop(0)
        prefix = token.split("-", 1)[0]
        if prefix == "QUOTA_EXCEEDED":
            return Outcome(prefix, retry_after=60)
        if prefix in ERRORS:
            return Outcome(prefix)
        if self.faults:
            with self.lock:
                fault = self._random.random() < self.faults
                code = self._random.choice(FAULT_CODES) if fault else "ok"
            if code == "QUOTA_EXCEEDED":
                return Outcome(code, retry_after=self.fault_retry_after)
            return Outcome(code)
        return Outcome()

    def _issue_access_token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" or assertion.count(".") != 2:
            return 400, {"error": "invalid_grant", "error_description": "Invalid grant."}
        header, claims, signature = assertion.split(".")
        try:
            self._key.public_key().verify(
                _b64url_decode(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        with self.lock:
            self.token_requests += 1
            access = f"ya29.fake-{next(self._ids)}"
            self._access_tokens.add(access)
        token_type = "Bearer"  # nosec B105 # the OAuth token type, not a secret
        return 200, {"access_token": access, "expires_in": 3599, "token_type": token_type}

    def _send(
        self, project: str, authorization: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        scheme, _, access = authorization.partition(" ")
        with self.lock:
            known = access in self._access_tokens
        if scheme.lower() != "bearer" or not known:
            return 401, _error(401, "UNAUTHENTICATED", "Request had invalid credentials."), {}
        if project != self.project_id:
            return 403, _error(403, "PERMISSION_DENIED", "Permission denied on project."), {}
        message = body.get("message")
        if not isinstance(message, dict) or not message.get("token"):
            return 400, _invalid("message", "A message target is required."), {}
        token = str(message["token"])
        without_token = {k: v for k, v in message.items() if k != "token"}
        size = len(json.dumps(without_token, ensure_ascii=False, separators=(",", ":")).encode())
        if size > MAX_PAYLOAD_BYTES:
            outcome = Outcome("INVALID_ARGUMENT")
            status, payload = 400, _invalid("message", "Message is too big")
        elif not _data_strings_only(message):
            outcome = Outcome("INVALID_ARGUMENT")
            status, payload = 400, _invalid("message.data", "Invalid value (string expected).")
        else:
            outcome = self._next_outcome(token)
            if outcome.code == "ok":
                name = f"projects/{project}/messages/0:{next(self._ids)}%fake"
                status, payload = 200, {"name": name}
            else:
                status, rpc_status, text = ERRORS[outcome.code]
                payload = _error(status, rpc_status, text, outcome.code)
        headers = {}
        if outcome.retry_after is not None:
            headers["Retry-After"] = str(outcome.retry_after)
        attempt = {
            "token": token,
            "outcome": outcome.code,
            "at": time.time(),
            "message": message,
            "retry_after": outcome.retry_after,
        }
        self._handling.attempt = attempt
        with self.lock:
            self.attempts.append(attempt)
            if status == 200:
                self.sent.append({"message": message, "name": payload["name"]})
        if self.verbose:
            notification = message.get("notification", {})
            print(  # noqa: T201 - the CLI's output
                f"[fake-fcm] {outcome.code:<18} …{token[-6:]} {notification.get('title', '')}"
                f" | {notification.get('body', '')}",
                flush=True,
            )
        return status, payload, headers

    # --- command line ------------------------------------------------------------------

    def banner(self) -> str:
        environment = " ".join(f"{name}={value}" for name, value in self._backend_env().items())
        return (
            "Fake FCM listening. Start the backend and its worker with:\n"
            f"  {environment}\n"
            "Tokens starting with UNREGISTERED-, SENDER_ID_MISMATCH-, INVALID_ARGUMENT-,\n"
            "QUOTA_EXCEEDED-, UNAVAILABLE- or INTERNAL- get that error. Ctrl-C stops."
        )

    def _backend_env(self) -> dict[str, str]:
        credentials = self.credentials_path or Path("service-account.json")
        return backend_env(self.base_url, credentials)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--project", default="demo-citizen")
        parser.add_argument(
            "--credentials",
            type=Path,
            default=Path("var/fake-fcm/service-account.json"),
            help="where to write the service-account file the backend should use",
        )
        parser.add_argument(
            "--faults",
            type=float,
            default=0.0,
            help="share of sends (0..1) answered 429 QUOTA_EXCEEDED or 503 UNAVAILABLE at random",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the --faults draws")
        parser.add_argument(
            "--retry-after", type=int, default=1, help="Retry-After seconds of a --faults 429"
        )

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> FakeFcmServer:
        server = cls(
            args.project,
            args.host,
            args.port,
            faults=args.faults,
            seed=args.seed,
            fault_retry_after=args.retry_after,
        )
        server.credentials_path = server.write_credentials(args.credentials.resolve())
        return server


def _error(status: int, rpc_status: str, message: str, fcm_code: str = "") -> dict[str, Any]:
    details = [{"@type": FCM_ERROR_TYPE, "errorCode": fcm_code}] if fcm_code else []
    return {"error": {"code": status, "message": message, "status": rpc_status, "details": details}}


def _invalid(field: str, description: str) -> dict[str, Any]:
    body = _error(400, "INVALID_ARGUMENT", description, "INVALID_ARGUMENT")
    body["error"]["details"].append(
        {
            "@type": BAD_REQUEST_TYPE,
            "fieldViolations": [{"field": field, "description": description}],
        }
    )
    return body


if __name__ == "__main__":
    main(FakeFcmServer)
