"""Request body limits enforced while the body arrives, in front of Django.

Django's ASGI handler reads the whole body (spooling it to disk past
FILE_UPLOAD_MAX_MEMORY_SIZE) before any middleware runs, so a limit checked in
Django middleware answers only after every byte was received, and a chunked body
without Content-Length is not checked at all. `BodyLimitMiddleware` wraps the
Django ASGI app: a Content-Length over the limit is answered 413 before a byte of
the body is read, and a body without one (chunked) is counted as it arrives and
answered 413 as soon as it passes the limit. The server then closes the
connection instead of reading the rest.

Limits by route class:
- JSON routes (every other route under /api/): API_MAX_JSON_BODY_BYTES;
- the citizen's attachment upload: API_MAX_UPLOAD_BODY_BYTES;
- the agency's "complete" with its electronic result: RESULT_FILE_MAX_BYTES plus
  API_MAX_JSON_BODY_BYTES for the other fields and the multipart framing;
- pages outside /api/ (the admin, whose forms may carry a result file): the
  largest of the above.

A multipart body's frame (its closing delimiter, its file names) is judged where
Django parses it (`backend.multipart_frame`), on every path that serves Django, not
here: the test client and a WSGI server never pass this wrapper.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation.trans_real import parse_accept_lang_header

from backend.errors import ApiError, PayloadTooLarge, error_response

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
App = Callable[[Scope, Any, Any], Awaitable[None]]

# Routes that take files (multipart). Everything else under /api/ is JSON; a test
# checks that every API operation with a file parameter is listed here.
UPLOAD_ROUTES = (
    re.compile(r"^/api/v1/dossiers/[^/]+/attachments/?$"),
    # Papers kept in the document wallet: the same pipeline and limits as attachments.
    re.compile(r"^/api/v1/wallet/items/?$"),
)
RESULT_ROUTES = (
    re.compile(r"^/api/v1/agency/dossiers/[^/]+/complete/?$"),
    # Anyone checking a signed result uploads the PDF: the size of a result.
    re.compile(r"^/api/v1/verify/?$"),
)


def result_body_limit() -> int:
    return int(settings.RESULT_FILE_MAX_BYTES + settings.API_MAX_JSON_BODY_BYTES)


def body_limit(path: str) -> int:
    """The largest request body accepted on `path`, in bytes."""
    if any(route.match(path) for route in UPLOAD_ROUTES):
        return int(settings.API_MAX_UPLOAD_BODY_BYTES)
    if any(route.match(path) for route in RESULT_ROUTES):
        return result_body_limit()
    if path.startswith("/api/"):
        return int(settings.API_MAX_JSON_BODY_BYTES)
    return max(int(settings.API_MAX_UPLOAD_BODY_BYTES), result_body_limit())


def too_large_text(limit: int) -> str:
    return _("The request body is larger than %(limit)s bytes.") % {"limit": limit}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _language(scope: Scope) -> str:
    accept = (_header(scope, b"accept-language") or b"").decode("latin-1")
    for code, _quality in parse_accept_lang_header(accept):
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return str(settings.LANGUAGE_CODE)


def _too_large(limit: int) -> ApiError:
    return PayloadTooLarge(
        "payload_too_large", too_large_text(limit), details={"limit_bytes": limit}
    )


async def _refuse(scope: Scope, send: Send, refusal: Callable[[], ApiError]) -> None:
    """The error `refusal` makes, in the project's error shape and the request's
    language; `Connection: close` makes the server stop reading the rest of the body
    and close the connection once this is sent."""
    with translation.override(_language(scope)):
        error = refusal()
        response = error_response(error.status, error.code, error.message, error.details)
    headers = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()
    ]
    headers += [
        (b"content-length", str(len(response.content)).encode()),
        (b"connection", b"close"),
        (b"x-request-id", uuid.uuid4().hex.encode()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


class BodyLimitMiddleware:
    """ASGI middleware: refuses a request body over its route's limit while receiving it."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _refuse(scope, send, partial(_too_large, limit))
            return
        received = 0
        refused = False
        responding = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] != "http.request" or responding:
                return message
            body = message.get("body", b"")
            received += len(body)
            if received > limit:
                refused = True
                await _refuse(scope, send, partial(_too_large, limit))
                # Django stops reading at a disconnect and answers nothing.
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responding
            if refused:
                return  # the app's answer to a body it never got whole
            responding = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
