"""Body limits hold while the body arrives, through the real server on loopback.

The Procfile's web command serves the app; a raw socket client sends a body
and reads at the same time, so it sees when the answer comes: a refused body
gets its 413 while the client is still sending, and the server stops reading
(the client cannot finish sending what it announced).
"""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings

from auth.models import User
from backend.body_limits import result_body_limit
from tests.backend.web_process import WebProcess, web_process

MB = 1024 * 1024
CHUNK = 64 * 1024
WAIT = 60


@pytest.fixture(scope="module")
def server(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebProcess]:
    with django_db_blocker.unblock(), web_process(tmp_path_factory.mktemp("web")) as process:
        yield process


@dataclass
class Exchange:
    sent: int  # body bytes the server took off the client
    finished_sending: bool
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes] | None:
    head, found, rest = raw.partition(b"\r\n\r\n")
    if not found:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    if "content-length" in headers and len(rest) < int(headers["content-length"]):
        return None
    return int(lines[0].split()[1]), headers, rest


def exchange(server: WebProcess, head: bytes, body: Iterator[bytes]) -> Exchange:
    """Send `head`, then `body` while reading; stop when the answer is complete."""
    host, port = server.address.split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    sock.sendall(head)
    sock.setblocking(False)
    sent, pending, finished, can_send = 0, b"", False, True
    received = b""
    deadline = time.monotonic() + WAIT
    try:
        while (answer := _parse(received)) is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no answer; sent {sent} bytes, got {received[:200]!r}"
            readable, writable, _ = select.select(
                [sock], [sock] if can_send and not finished else [], [], remaining
            )
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                assert data, f"closed without an answer after {sent} bytes"
                received += data
                continue
            if writable:
                if not pending:
                    pending = next(body, b"")
                    if not pending:
                        finished = True
                        continue
                try:
                    count = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    # The server closed its side; the answer is already on its way.
                    can_send = False
                    continue
                sent += count
                pending = pending[count:]
    finally:
        sock.close()
    status, headers, payload = answer
    return Exchange(sent, finished, status, json.loads(payload or b"null"), headers)


def fixed_body(total: int) -> Iterator[bytes]:
    left = total
    while left:
        size = min(CHUNK, left)
        yield b"x" * size
        left -= size


def chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


def request_head(path: str, content_type: str, *, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Accept-Language: en\r\n{framing}\r\n\r\n"
    ).encode()


VERIFY_PATH = "/api/v1/verify"


def upload_path() -> str:
    return f"/api/v1/dossiers/{uuid.uuid4()}/attachments"


def assert_too_large(answer: Exchange, limit: int) -> None:
    assert answer.status == 413
    assert answer.body == {
        "code": "payload_too_large",
        "message": f"The request body is larger than {limit} bytes.",
        "details": {"limit_bytes": limit},
    }
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"


def test_announced_20_mb_upload_is_refused_before_the_body_is_read(server: WebProcess) -> None:
    total = 20 * MB
    answer = exchange(
        server,
        request_head(upload_path(), "multipart/form-data; boundary=b", length=total),
        fixed_body(total),
    )

    assert_too_large(answer, settings.API_MAX_UPLOAD_BODY_BYTES)
    assert not answer.finished_sending
    assert answer.sent < total


def test_chunked_upload_is_refused_once_it_passes_the_limit(server: WebProcess) -> None:
    total = 40 * MB
    answer = exchange(
        server,
        request_head(upload_path(), "multipart/form-data; boundary=b", length=None),
        chunked(fixed_body(total)),
    )

    assert_too_large(answer, settings.API_MAX_UPLOAD_BODY_BYTES)
    assert not answer.finished_sending
    assert answer.sent < total


@pytest.mark.django_db
def test_chunked_json_over_the_limit_is_refused_not_parsed(server: WebProcess) -> None:
    phone = "+84987650001"
    document = json.dumps(
        {
            "phone": phone,
            "full_name": "Lê Văn Dài",
            "password": "mây-trắng-2026",
            "x": "y" * 300_000,
        }
    ).encode()
    pieces = iter([document[i : i + 8192] for i in range(0, len(document), 8192)])

    answer = exchange(
        server,
        request_head("/api/v1/auth/register", "application/json", length=None),
        chunked(pieces),
    )

    assert_too_large(answer, settings.API_MAX_JSON_BODY_BYTES)
    assert not User.objects.filter(phone=phone).exists()


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/v1/dossiers", lambda: settings.API_MAX_JSON_BODY_BYTES),
        ("/api/v1/agency/dossiers/H01-260101-0001/complete", result_body_limit),
        (upload_path(), lambda: settings.API_MAX_UPLOAD_BODY_BYTES),
    ],
    ids=["json", "agency-result", "upload"],
)
def test_each_route_class_has_its_limit_at_the_boundary(
    server: WebProcess, path: str, limit: Any
) -> None:
    size = limit()
    content_type = (
        "application/json" if path == "/api/v1/dossiers" else "multipart/form-data; boundary=b"
    )
    over = exchange(server, request_head(path, content_type, length=size + 1), fixed_body(size + 1))
    assert_too_large(over, size)

    at_limit = exchange(server, request_head(path, content_type, length=size), fixed_body(size))
    # Read whole and handed to Django, which answers for itself (no credentials here).
    assert at_limit.finished_sending
    assert at_limit.sent == size
    assert at_limit.status in (400, 401, 422)


def multipart_pieces(*, closed: bool) -> Iterator[bytes]:
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
    yield from fixed_body(3 * CHUNK)
    if closed:
        yield b"\r\n--b--\r\n"


@pytest.mark.parametrize("chunked_body", [True, False], ids=["chunked", "content-length"])
def test_an_upload_that_ends_without_its_closing_delimiter_is_400(
    server: WebProcess, chunked_body: bool
) -> None:
    # The check of anyone's signed result: a form route that needs no sign-in.
    body = b"".join(multipart_pieces(closed=False))
    head = request_head(
        VERIFY_PATH,
        "multipart/form-data; boundary=b",
        length=None if chunked_body else len(body),
    )
    pieces = multipart_pieces(closed=False)
    answer = exchange(server, head, chunked(pieces) if chunked_body else pieces)
    assert answer.status == 400
    assert answer.body == {
        "code": "malformed_multipart",
        "message": "The request body is not a valid multipart form.",
        "details": None,
    }
    assert answer.sent >= len(body)  # judged once the body ended, not before
    # The same body closed is read: a file that is no signed result.
    whole = b"".join(multipart_pieces(closed=True))
    closed = exchange(
        server,
        request_head(VERIFY_PATH, "multipart/form-data; boundary=b", length=len(whole)),
        iter([whole]),
    )
    assert closed.status == 200
    assert (closed.body["state"], closed.body["problem"]) == ("invalid", "pdf_unreadable")


def test_a_whole_multipart_body_sent_chunked_is_400_not_an_empty_form(server: WebProcess) -> None:
    # Django parses no multipart body without Content-Length: every field would be
    # missing, and a route whose fields are all optional would act on nothing.
    answer = exchange(
        server,
        request_head(VERIFY_PATH, "multipart/form-data; boundary=b", length=None),
        chunked(multipart_pieces(closed=True)),
    )
    assert answer.status == 400
    assert answer.body == {
        "code": "malformed_multipart",
        "message": "The request body is not a valid multipart form.",
        "details": None,
    }
