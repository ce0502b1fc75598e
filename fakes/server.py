"""The HTTP plumbing every fake shares: a threaded loopback server and its controls.

A fake subclasses `FakeServer` and writes `handle(request) -> Response | None`
in its provider's wire format (and `error_response` for the provider's error
body). The base gives it, identically for every fake:

- a threaded HTTP/1.1 server on loopback with TCP_NODELAY (headers and body
  leave in two writes: without it each answer on a kept-alive connection waits
  ~40 ms for the client's delayed ACK) and a deep accept queue;
- a request log (`requests`: method, path, body, status, time), the requests
  being handled (`in_flight`, of which `held` wait for `delay`) and the most
  handled at once (`peak_concurrency`);
- fault modes: `fail_next(kind, ...)` for the next matching requests, `fault_mode`
  for every request until cleared, `delay` before every answer. Kinds: `error`
  (an HTTP status with the provider's error body for `code`, or for a 5xx
  without one its outage page, `error_page`: an HTML page unless the fake has
  its own), `hang` (no answer for `hang_seconds`, then 504), `lose_answer` (the
  request is handled, then the answer is never sent: a client timeout after the
  provider acted), `not_json` (200 with a body that is not JSON), `drop` (the
  connection closes without an answer);
- the same controls over HTTP for a fake running as its own process, on paths no
  provider has: `GET /_fake/ready`, `GET /_fake/log`, `GET /_fake/stats`,
  `POST /_fake/reset`, `POST /_fake/faults` (`{"next": [fault, ...], "mode": fault
  or null, "delay": seconds}`, each key optional), and the fake's own (`control`);
- `main(FakeClass)`: the command line (`--host`, `--port`, `--port-file`,
  `--quiet`, plus the fake's own options); the port file is written once the
  server listens, which is the readiness signal a harness waits on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Literal, TypeVar

FaultKind = Literal["error", "hang", "lose_answer", "not_json", "drop"]
FAULT_KINDS: tuple[str, ...] = ("error", "hang", "lose_answer", "not_json", "drop")
CONTROL_PREFIX = "/_fake/"
HTML_ERROR_PAGE = b"<html>Bad gateway</html>"


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]  # as sent, blank values included
    headers: dict[str, str]  # names in lower case
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as JSON (`None` when empty); ValueError when it is not JSON."""
        return json.loads(self.body) if self.body else None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (`{}` when empty); ValueError when it is not one."""
        body = self.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise ValueError("a JSON object is expected")
        return body

    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body.decode())


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


def json_response(
    status: int,
    payload: Any,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json; charset=utf-8",
) -> Response:
    raw = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, raw, dict(headers or {}), content_type)


def raw_response(status: int, body: bytes, content_type: str = "text/html") -> Response:
    return Response(status, body, {}, content_type)


@dataclass
class Fault:
    kind: str = "error"  # one of FAULT_KINDS
    status: int = 503  # of an `error`
    code: str = ""  # the provider's error code of an `error`; none = an HTML error page
    path_contains: str = ""  # only requests whose path contains this

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        known = {"kind", "status", "code", "path_contains"}
        return cls(**{key: value for key, value in data.items() if key in known})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a deliberately slow answer must not hold teardown
    request_queue_size = 512  # bursts of parallel sends (FCM's send_each makes up to 500)


FakeT = TypeVar("FakeT", bound="FakeServer")


class FakeServer:
    """One fake provider on loopback. `start()`/`stop()` or `with Fake() as fake:`."""

    name: ClassVar[str] = "fake"
    default_port: ClassVar[int] = 0
    # A body that is not JSON, as the provider's maintenance pages look.
    not_json_body: ClassVar[bytes] = b"<html>maintenance</html>"
    # Request bodies kept in the log (a fake with its own, richer log may turn it off).
    log_bodies: ClassVar[bool] = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lock = threading.RLock()
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak_concurrency = 0
        self.held = 0  # of those in flight, the ones held by `delay`, not yet handled
        self.delay = 0.0
        self.hang_seconds = 2.0
        self.fault_mode: Fault | None = None
        self.verbose = False
        self._next_faults: deque[Fault] = deque()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._httpd = _HTTPServer((host, port), _handler_class(self))

    # --- what a fake writes ------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        """The provider's answer; None sends none (the connection is closed)."""
        raise NotImplementedError

    def error_response(self, status: int, code: str) -> Response:
        """The provider's error body for `code` (used by `error` and `hang` faults)."""
        return json_response(status, {"error": {"code": code, "message": code}})

    def error_page(self, status: int) -> Response:
        """What an `error` fault without a code answers for a 5xx: the provider's outage page."""
        return raw_response(status, HTML_ERROR_PAGE)

    def control(self, request: Request) -> Response | None:
        """The fake's own controls under /_fake/ (None: no such control). A ValueError,
        KeyError or TypeError (a body that does not fit) is answered 400."""
        return None

    def counts_in_flight(self, request: Request) -> bool:
        """Whether `request` counts in `in_flight` and `peak_concurrency`."""
        return True

    def stats(self) -> dict[str, Any]:
        """Counts served as `GET /_fake/stats`."""
        with self.lock:
            return {
                "requests": len(self.requests),
                "in_flight": self.in_flight,
                "peak_concurrency": self.peak_concurrency,
            }

    def log(self) -> dict[str, Any]:
        """What `GET /_fake/log` serves."""
        with self.lock:
            return {"requests": list(self.requests)}

    def reset(self) -> None:
        """Forget what was received and any pending fault (`POST /_fake/reset`)."""
        with self.lock:
            self.requests.clear()
            self._next_faults.clear()
            self.fault_mode = None
            self.delay = 0.0
            self.peak_concurrency = self.in_flight

    def banner(self) -> str:
        """The line the command line prints once the server listens."""
        return f"{self.name} listening on {self.base_url}. Ctrl-C stops."

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The fake's own command-line options."""

    @classmethod
    def from_arguments(cls: type[FakeT], args: argparse.Namespace) -> FakeT:
        return cls(host=args.host, port=args.port)

    # --- control -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        host = self._httpd.server_address[0]
        return f"http://{host!s}:{self.port}"

    def start(self: FakeT) -> FakeT:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), daemon=True, name=self.name
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (held answers are released) and close the socket."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Serve in this thread until `stop()` or SIGINT/SIGTERM (the command line)."""
        try:
            self._httpd.serve_forever(0.05)
        finally:
            self._stopping.set()
            self._httpd.server_close()

    def __enter__(self: FakeT) -> FakeT:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(
        self,
        kind: str = "error",
        *,
        times: int = 1,
        status: int = 503,
        code: str = "",
        path_contains: str = "",
    ) -> None:
        """The next `times` requests whose path contains `path_contains` get this fault."""
        with self.lock:
            for _ in range(times):
                self._next_faults.append(Fault(kind, status, code, path_contains))

    def hold(self, seconds: float) -> None:
        """Wait, released early when the server stops (a hang never outlives a test)."""
        self._stopping.wait(seconds)

    def paths(self) -> list[str]:
        with self.lock:
            return [f"{entry['method']} {entry['path']}" for entry in self.requests]

    # --- dispatch ----------------------------------------------------------------------

    def _take_fault(self, request: Request) -> Fault | None:
        with self.lock:
            if self._next_faults and self._next_faults[0].path_contains in request.path:
                return self._next_faults.popleft()
            if self.fault_mode is not None and self.fault_mode.path_contains in request.path:
                return self.fault_mode
        return None

    def _faulty_response(self, fault: Fault, request: Request) -> Response | None:
        if fault.kind == "error":
            if not fault.code and fault.status >= 500:
                return self.error_page(fault.status)
            return self.error_response(fault.status, fault.code)
        if fault.kind == "hang":
            self.hold(self.hang_seconds)
            return self.error_response(504, "GATEWAY_TIMEOUT")
        if fault.kind == "lose_answer":
            self.handle(request)
            self.hold(self.hang_seconds)
            return None
        if fault.kind == "not_json":
            return raw_response(200, self.not_json_body, "text/html")
        return None  # drop

    def _respond(self, request: Request) -> Response | None:
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "at": time.time(),
            "status": None,
        }
        if self.log_bodies:
            try:
                entry["body"] = request.json()
            except ValueError:
                entry["body"] = request.body.decode(errors="replace")
        entry.update(self.log_entry(request))
        counted = self.counts_in_flight(request)
        with self.lock:
            self.requests.append(entry)
            if counted:
                self.in_flight += 1
                self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
        try:
            fault = self._take_fault(request)
            if self.delay:
                self._hold_counted(counted)
            response = (
                self.handle(request) if fault is None else self._faulty_response(fault, request)
            )
        finally:
            if counted:
                with self.lock:
                    self.in_flight -= 1
        entry["status"] = response.status if response is not None else None
        return response

    def _hold_counted(self, counted: bool) -> None:
        """Wait `delay`; a request that counts in `in_flight` counts in `held` meanwhile."""
        with self.lock:
            self.held += counted
        try:
            self.hold(self.delay)
        finally:
            with self.lock:
                self.held -= counted

    def log_entry(self, request: Request) -> dict[str, Any]:
        """Extra keys of the request's log entry (e.g. the header that authenticates)."""
        return {}

    def _control(self, request: Request) -> Response:
        action = request.path.removeprefix(CONTROL_PREFIX)
        if request.method == "GET" and action == "ready":
            return json_response(200, {"name": self.name, "ready": True})
        if request.method == "GET" and action == "log":
            return json_response(200, self.log())
        if request.method == "GET" and action == "stats":
            return json_response(200, self.stats())
        if request.method == "POST" and action == "reset":
            self.reset()
            return json_response(200, {})
        if request.method == "POST" and action == "faults":
            try:
                # Everything is parsed before anything changes: a bad body changes nothing.
                body = request.json() or {}
                faults = [Fault.from_json(item) for item in body.get("next", [])]
                mode = body.get("mode", self.fault_mode and asdict(self.fault_mode))
                new_mode = Fault.from_json(mode) if mode else None
                delay = float(body.get("delay", self.delay))
            except (ValueError, TypeError, AttributeError) as exc:
                return json_response(400, {"error": str(exc)})
            with self.lock:
                self._next_faults.extend(faults)
                self.fault_mode = new_mode
                self.delay = delay
            return json_response(200, {"pending": len(self._next_faults)})
        try:
            answer = self.control(request)
        except (ValueError, KeyError, TypeError) as exc:
            return json_response(400, {"error": str(exc)})
        if answer is not None:
            return answer
        return json_response(404, {"error": f"no control {request.method} {request.path}"})


def _handler_class(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the request log is the record

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urllib.parse.urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            if request.path.startswith(CONTROL_PREFIX):
                response: Response | None = server._control(request)
            else:
                response = server._respond(request)
            if response is None:
                self.close_connection = True
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_PUT(self) -> None:
            self._dispatch()

        def do_PATCH(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

    return Handler


# --- command line -------------------------------------------------------------------------


def write_port_file(path: Path, port: int) -> None:
    """Write `port` so that a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{port}\n")
    Path(tmp).replace(path)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(fake_class: type[FakeServer], argv: Sequence[str] | None = None) -> None:
    """`python -m fakes.<name>`: serve one fake until SIGINT or SIGTERM."""
    module = sys.modules[fake_class.__module__]
    spec = getattr(module, "__spec__", None)
    name = spec.name if spec is not None else fake_class.__module__
    doc = module.__doc__ or ""
    parser = argparse.ArgumentParser(prog=f"python -m {name}", description=doc.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=fake_class.default_port, help="0 = any free port"
    )
    parser.add_argument(
        "--port-file",
        type=Path,
        help="write the port here once listening (a harness waits for this file)",
    )
    parser.add_argument("--quiet", action="store_true", help="no line per request")
    fake_class.add_arguments(parser)
    args = parser.parse_args(argv)
    fake = fake_class.from_arguments(args)
    fake.verbose = not args.quiet
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Ctrl-C stops it even when started in the background of a shell without job
    # control (CI scripts, `cmd &`): such a shell starts it with SIGINT ignored, and
    # Python then leaves it ignored, so a SIGINT would never arrive.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(fake.banner(), flush=True)  # noqa: T201 - the command's output
    if args.port_file is not None:
        write_port_file(args.port_file, fake.port)
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever()
