"""An upload the server got cut short, or with a file name Django drops, is refused.

Django's parser reads a body whose last part has no closing delimiter as complete, and
skips a file part named `.` or `..` without a word. Each test runs twice: through the
ASGI application the server runs (`backend.asgi`), with the body sent in pieces as a
phone on a flaky network sends it, and through Django's test client (its own handler:
no ASGI wrapper), which the other upload tests use.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from auth.models import User
from backend.asgi import application
from dossiers.models import Dossier
from tests.conftest import ApiClient, sign_in
from tests.dossiers.attachments import samples
from tests.dossiers.attachments.conftest import stored_files

pytestmark = pytest.mark.django_db

PIECE = 4 * 1024
CONTENT_TYPE = "multipart/form-data; boundary=XyZ"


def asgi_post(
    path: str, token: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST `body` in pieces of 4 KB; the server's status and JSON answer."""
    pieces = [body[i : i + PIECE] for i in range(0, len(body), PIECE)] or [b""]
    messages = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept-language", b"en"),
            *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
        ],
    }

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stays connected for the answer
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # As Django's test client does: the test's transaction holds the connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        async_to_sync(application)(scope, receive, send)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(content)


def client_post(
    path: str, token: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST `body` through Django's test client."""
    response = ApiClient(token=token, language="en").post(
        path, raw=body, content_type=CONTENT_TYPE, headers=headers
    )
    return response.status_code, response.json()


@pytest.fixture(params=[asgi_post, client_post], ids=["asgi", "test-client"])
def post(request: pytest.FixtureRequest) -> Any:
    return request.param


def upload_body(filename: str = "Giấy khai sinh.jpg", content: bytes | None = None) -> bytes:
    photo = samples.jpeg_bytes((1200, 900)) if content is None else content
    return (
        b'--XyZ\r\nContent-Disposition: form-data; name="document_code"\r\n\r\ndoc-1\r\n'
        + b"--XyZ\r\nContent-Disposition: form-data; name="
        + f'"file"; filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        + photo
        + b"\r\n--XyZ--\r\n"
    )


def path_of(dossier: Dossier) -> str:
    return f"/api/v1/dossiers/{dossier.pk}/attachments"


def test_a_whole_upload_is_stored(
    owner: User, dossier: Dossier, media_root: Path, post: Any
) -> None:
    body = upload_body()
    assert len(body) > 3 * PIECE
    status, answer = post(path_of(dossier), sign_in(owner)[1].access_token, body)
    assert status == 201, answer
    assert answer["original_name"] == "Giấy khai sinh.jpg"
    assert dossier.attachments.count() == 1
    assert len(stored_files(media_root)) == 2  # the photo and its thumbnail


@pytest.mark.parametrize(
    "cut",
    [b"\r\n--XyZ--\r\n", b"--XyZ--\r\n", b"--\r\n", b"-\r\n", b"\r\n"],
    ids=["before-delimiter", "after-crlf", "after-boundary", "half-closing", "no-final-crlf"],
)
def test_an_upload_cut_before_its_closing_delimiter_is_refused_and_nothing_stored(
    owner: User, dossier: Dossier, media_root: Path, cut: bytes, post: Any
) -> None:
    body = upload_body()
    status, answer = post(path_of(dossier), sign_in(owner)[1].access_token, body[: -len(cut)])
    if cut == b"\r\n":  # only the line break after the closing delimiter is missing
        assert status == 201, answer
        return
    assert status == 400
    assert answer == {
        "code": "malformed_multipart",
        "message": "The request body is not a valid multipart form.",
        "details": None,
    }
    assert dossier.attachments.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize("filename", [".", "..", "ảnh/", "..\\..\\", "\x07\x08"])
def test_a_file_named_dot_or_dot_dot_is_filename_invalid_and_nothing_stored(
    owner: User, dossier: Dossier, media_root: Path, filename: str, post: Any
) -> None:
    status, answer = post(path_of(dossier), sign_in(owner)[1].access_token, upload_body(filename))
    assert status == 422
    assert answer == {
        "code": "validation_error",
        "message": "Some fields are not valid.",
        "details": [
            {
                "field": "file",
                "location": "file",
                "code": "filename_invalid",
                "message": "The file name is not valid (such as “.”, “..” or a folder).",
            }
        ],
    }
    assert dossier.attachments.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("filename", "kept"),
    [
        ("C:\\fakepath\\Căn cước.jpg", "Căn cước.jpg"),
        ("../../etc/ảnh.jpg", "ảnh.jpg"),
        ("ảnh\x00\x1b[31m\u202egpj.exe", "ảnh[31mgpj.exe"),
        ("a" * 300 + ".jpg", "a" * 251 + ".jpg"),
    ],
    ids=["windows-path", "parent-path", "control-characters", "long"],
)
def test_the_name_a_file_keeps_has_no_path_no_control_character_and_fits(
    owner: User, dossier: Dossier, filename: str, kept: str, post: Any
) -> None:
    status, answer = post(path_of(dossier), sign_in(owner)[1].access_token, upload_body(filename))
    assert status == 201, answer
    assert answer["original_name"] == kept
    assert dossier.attachments.get().original_name == kept


def test_an_upload_cut_is_not_kept_for_its_idempotency_key_and_the_retry_is_stored(
    owner: User, dossier: Dossier, media_root: Path, post: Any
) -> None:
    token = sign_in(owner)[1].access_token
    key = {"Idempotency-Key": "upload-1"}
    body = upload_body()

    cut, _answer = post(path_of(dossier), token, body[:-4], key)
    assert cut == 400
    assert dossier.attachments.count() == 0
    assert stored_files(media_root) == []

    status, answer = post(path_of(dossier), token, body, key)
    assert status == 201, answer
    assert dossier.attachments.get().original_name == "Giấy khai sinh.jpg"
