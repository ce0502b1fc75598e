"""Cross-cutting HTTP behaviour: request ids, body limits, JSON errors everywhere."""

from __future__ import annotations

import ipaddress
import re
import sys
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from backend.body_limits import body_limit, too_large_text
from backend.errors import error_response, outage_response
from backend.logging import request_id_var
from backend.multipart_frame import watch_frame

REQUEST_ID_HEADER = "X-Request-ID"
# Stands for a missing REMOTE_ADDR (rate-limit keys, audit rows); nothing binds to it.
NO_ADDRESS = "0.0.0.0"  # noqa: S104  # nosec B104 # not a bind address
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Every response carries X-Request-ID; a sane incoming id is kept for tracing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class RequestLimitsMiddleware:
    """Refuses oversized bodies with 413 before a view reads them.

    Under the ASGI server `backend.body_limits.BodyLimitMiddleware` has already
    refused them while they arrived; this covers WSGI and the test client."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _is_api(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_response(400, "bad_content_length", _("Invalid Content-Length."))
            limit = body_limit(request.path)
            if length > limit:
                return error_response(
                    413, "payload_too_large", too_large_text(limit), details={"limit_bytes": limit}
                )
        return self.get_response(request)


class MultipartFrameMiddleware:
    """A multipart body is judged as Django parses it, wherever it does (views, the
    admin, the idempotency fingerprint): see `backend.multipart_frame`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        watch_frame(request)
        return self.get_response(request)


class ApiErrorShapeMiddleware:
    """Safety net: an error response under /api/ that is not JSON gets the error shape.

    Covers what happens outside ninja's handlers: 405 from method routing,
    DEBUG 404 pages, CSRF failures and the like.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            _is_api(request)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            headers = {}
            if response.status_code == 405 and response.has_header("Allow"):
                headers["Allow"] = response["Allow"]
            return error_response(response.status_code, headers=headers)
        return response


def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return error_response(404, "route_not_found", _("There is no such API route."))


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(400)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(403)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(404)


def handler500(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception (outside ninja: a middleware,
    # a plain view): an unreachable database or Redis is still a 503, not a 500.
    exc = sys.exc_info()[1]
    outage = outage_response(exc) if exc is not None else None
    return outage if outage is not None else error_response(500)


def request_language(request: HttpRequest) -> str:
    """The language LocaleMiddleware chose from Accept-Language: one of LANGUAGES (vi,
    en), or LANGUAGE_CODE (vi) when the request names none of them."""
    return str(getattr(request, "LANGUAGE_CODE", settings.LANGUAGE_CODE))


def client_ip(request: HttpRequest) -> str:
    """The caller's IP. X-Forwarded-For is read only for the configured proxy hops.

    With TRUSTED_PROXY_COUNT = N, the N-th address from the right of the header
    is the client as seen by our outermost trusted proxy; anything further left
    was written by the client and is ignored, so a forged header changes nothing.
    The address as it is (audit rows, gateways); limits count `rate_limit_address`.
    """
    remote = str(request.META.get("REMOTE_ADDR") or NO_ADDRESS)
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [
        part.strip()
        for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")
        if part.strip()
    ]
    if len(forwarded) < hops:
        return remote
    return forwarded[-hops]


def rate_limit_address(ip: str) -> str:
    """What per-IP limits count `ip` by (a counter's key, never an audit row's).

    An IPv6 client is counted by its network (RATE_LIMIT_IPV6_PREFIX, a /64 by
    default): a host that holds a /64 could otherwise give every request a fresh
    address and a fresh budget. An IPv4-mapped address (`::ffff:a.b.c.d`, from a
    dual-stack socket or proxy) counts as the IPv4 address it is. Anything that is
    not an address (the placeholder of a missing one) is kept as it is.
    """
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    prefix = settings.RATE_LIMIT_IPV6_PREFIX
    # From the integer: a zone index ("fe80::1%eth0") does not belong to the network.
    network = int(address) >> (128 - prefix) << (128 - prefix)
    return str(ipaddress.IPv6Network((network, prefix)))
