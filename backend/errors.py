"""One error shape for every failure: {"code", "message", "details"}.

`code` is stable and meant for machines; `message` is in the request's language.
Raise an `ApiError` (or a subclass) anywhere below a handler; the root API turns
it into the documented response.
"""

from __future__ import annotations

from typing import Any

import psycopg
import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext_lazy as _
from ninja import Schema

# Default texts for codes shared by every app. App-specific codes pass their
# own message when they raise.
STATUS_DEFAULTS: dict[int, tuple[str, Any]] = {
    400: ("bad_request", _("The request could not be understood.")),
    401: ("not_authenticated", _("Sign in to continue.")),
    403: ("permission_denied", _("You are not allowed to do this.")),
    404: ("not_found", _("Not found.")),
    405: ("method_not_allowed", _("This method is not allowed here.")),
    409: ("conflict", _("The request conflicts with the current state.")),
    413: ("payload_too_large", _("The request is too large.")),
    415: ("unsupported_media_type", _("This content type is not supported.")),
    422: ("validation_error", _("Some fields are not valid.")),
    429: ("rate_limited", _("Too many requests. Please try again later.")),
    500: ("internal_error", _("Something went wrong on our side. Please try again.")),
    503: ("service_unavailable", _("The service is temporarily unavailable.")),
}


class ErrorOut(Schema):
    """The body of every error response."""

    code: str
    message: str
    details: Any = None


class ApiError(Exception):
    status = 400

    def __init__(
        self,
        code: str | None = None,
        message: Any = None,
        *,
        status: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        default_code, default_message = STATUS_DEFAULTS.get(self.status, STATUS_DEFAULTS[400])
        self.code = code or default_code
        self.message = message if message is not None else default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(f"{self.status} {self.code}")


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    status = 422


class PermissionDenied(ApiError):
    status = 403


class NotAuthenticated(ApiError):
    status = 401


class PayloadTooLarge(ApiError):
    status = 413


class ServiceUnavailable(ApiError):
    status = 503


class RateLimited(ApiError):
    status = 429

    def __init__(self, retry_after: int, code: str | None = None, message: Any = None) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(
            code,
            message,
            details={"retry_after": self.retry_after},
            headers={"Retry-After": str(self.retry_after)},
        )


def field_detail(field: str, code: str, message: Any, location: str = "body") -> dict[str, str]:
    """One field's entry of `details`, in the same shape as schema validation errors
    (`location`: body, query, form or file, as ninja names them)."""
    return {"field": field, "location": location, "code": code, "message": str(message)}


def field_error(field: str, code: str, message: Any, location: str = "body") -> Unprocessable:
    """A 422 for one field (`field_detail`)."""
    return Unprocessable(details=[field_detail(field, code, message, location)])


def error_response(
    status: int,
    code: str | None = None,
    message: Any = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    default_code, default_message = STATUS_DEFAULTS.get(status, STATUS_DEFAULTS[400])
    body = {
        "code": code or default_code,
        "message": str(message if message is not None else default_message),
        "details": details,
    }
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def api_error_response(request: HttpRequest, exc: ApiError) -> JsonResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


# A backing service that is away: the answer is 503 with a Retry-After, whatever
# wraps the error (Django's database wrapper, psycopg used directly by the stream's
# reader, the connection pool's own timeout, an exception raised while handling one).
RETRY_AFTER_SECONDS = 5
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,  # psycopg_pool's PoolTimeout and PoolClosed are OperationalErrors
)
CACHE_DOWN: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def outage_code(exc: BaseException) -> str | None:
    """`database_unavailable` or `cache_unavailable` when `exc`, or an exception it
    was raised from or while handling, says a backing service is away; else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DATABASE_DOWN):
            return "database_unavailable"
        if isinstance(current, CACHE_DOWN):
            return "cache_unavailable"
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def outage_response(exc: BaseException) -> JsonResponse | None:
    """The 503 for an outage (see `outage_code`), or None for any other failure."""
    code = outage_code(exc)
    if code is None:
        return None
    return unavailable_response(code)


def unavailable_response(code: str) -> JsonResponse:
    return error_response(
        503,
        code,
        _("The service is temporarily unavailable."),
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
