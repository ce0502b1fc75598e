"""Logs never contain tokens, OTP codes, passwords or full citizen ID numbers."""

from __future__ import annotations

import json
import logging
import logging.config
from typing import Any

from django.core import signing
from django.urls import URLResolver, get_resolver
from uvicorn.config import LOGGING_CONFIG as UVICORN_LOGGING
from uvicorn.logging import ColourizedFormatter as UvicornFormatter

from backend.logging import JsonFormatter, RedactingFilter, RequestIdFilter, redact_text


def render(message: str, *args: object, **extra: object) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    RequestIdFilter().filter(record)
    RedactingFilter().filter(record)
    return JsonFormatter().format(record)


def test_secrets_in_messages_are_redacted() -> None:
    out = render(
        "login phone=%s password=%s otp %s header Bearer %s cccd %s",
        "+84912345678",
        "hunter2!",
        "123456",
        "eyJhbGciOi.abc.def",
        "001203004567",
    )
    for secret in ["hunter2!", "123456", "eyJhbGciOi.abc.def", "001203004567", "912345678"]:
        assert secret not in out
    assert "+84******678" in out
    assert json.loads(out)["level"] == "INFO"


def test_sensitive_extra_fields_are_redacted() -> None:
    out = json.loads(
        render("event", token="abc", refresh_token="def", citizen_id="0012", user_id="u1")
    )
    assert out["token"] == out["refresh_token"] == out["citizen_id"] == "[redacted]"
    assert out["user_id"] == "u1"


def test_exception_text_is_redacted() -> None:
    try:
        raise ValueError("bad password=topsecret for 0912345678")
    except ValueError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    RedactingFilter().filter(record)
    out = JsonFormatter().format(record)
    assert "topsecret" not in out
    assert "0912345678" not in out
    assert "ValueError" in out


def test_ordinary_text_is_untouched() -> None:
    assert redact_text("dossier H01-260101-0001 accepted") == "dossier H01-260101-0001 accepted"


def test_websocket_ticket_in_a_request_line_is_redacted() -> None:
    out = render(
        '%s - "GET %s HTTP/1.1" %d',
        "127.0.0.1:5000",
        "/ws/v1/events?ticket=Zx9_abc-1&last_event_id=7",
        101,
    )
    assert "Zx9_abc-1" not in out
    assert "/ws/v1/events?ticket=[redacted]&last_event_id=7" in json.loads(out)["message"]


def test_uvicorn_loggers_go_through_the_redacting_handler(settings) -> None:
    # In the web process uvicorn configures its loggers first, then the app's import
    # runs django.setup() with settings.LOGGING: the same order here.
    logging.config.dictConfig(UVICORN_LOGGING)
    logging.config.dictConfig(settings.LOGGING)
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        assert not logger.propagate
        # Ours replaces uvicorn's (the other handlers there are pytest's capture).
        assert any(
            isinstance(f, RedactingFilter) for handler in logger.handlers for f in handler.filters
        )
        assert not any(
            isinstance(handler.formatter, UvicornFormatter) for handler in logger.handlers
        )


def _routes(patterns: list[Any], prefix: str = "") -> list[str]:
    """Every route of the URL configuration, nested includes flattened."""
    found = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _routes(pattern.url_patterns, route)
        else:
            found.append(route)
    return found


def test_every_route_with_a_token_in_its_path_is_redacted_in_request_lines() -> None:
    token = signing.dumps({"a": "0b6c0a4e-93d1-4f7e-9d65-3f1e2a1c9b10", "g": 7}, salt="any")
    routes = [route for route in _routes(get_resolver().url_patterns) if "<token>" in route]
    assert len(routes) >= 2  # the signed download link and the agency file link
    for route in routes:
        path = "/" + route.replace("<token>", token).lstrip("^").rstrip("$")
        out = render('%s - "GET %s HTTP/1.1" %d', "127.0.0.1:5000", path, 200)
        message = json.loads(out)["message"]
        assert token.split(":")[0] not in out, route
        assert token.split(":")[-1] not in out, route
        assert "[redacted]" in message


def test_signed_link_query_parameters_are_redacted() -> None:
    url = (
        "/media/a.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261206"
        "&X-Amz-Date=20261206T010000Z&X-Amz-Expires=300&X-Amz-Security-Token=FQoGZXIvYXdz"
        "&X-Amz-Signature=5d41402abc4b2a76&Signature=abc&AWSAccessKeyId=AKIAOLD&token=t0k"
        "&sig=s1g&key_id=ak_0011&page=2"
    )
    out = json.loads(render('"GET %s HTTP/1.1" %d', url, 200))["message"]
    for secret in ("AKIAEXAMPLE", "FQoGZXIvYXdz", "5d41402abc4b2a76", "=abc", "AKIAOLD",
                   "t0k", "s1g", "ak_0011"):  # fmt: skip
        assert secret not in out
    assert "X-Amz-Expires=300" in out
    assert "page=2" in out
