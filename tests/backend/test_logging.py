"""Logs never contain tokens, OTP codes, passwords or full citizen ID numbers."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from typing import Any

from django.core import signing
from django.urls import URLResolver, get_resolver
from django.utils.log import configure_logging
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


def test_search_terms_are_redacted() -> None:
    """The admin finds people by name, phone, citizen ID or address with ?q=."""
    lines = [
        "/admin/accounts/user/?q=Nguy%E1%BB%85n+V%C4%83n+An",
        "/admin/accounts/user/?q=912345678&o=1",
        "/admin/postal/savedaddress/?q=Ng%C3%B5+5+nh%C3%A0+17",
        # The change page of an object found by a search carries the search along.
        "/admin/accounts/user/7/change/?_changelist_filters=o%3D1%26q%3DNguy%25E1%25BB%2585n",
        "/admin/accounts/user/7/change/?_changelist_filters=q%3D0912%2B345%2B678%26o%3D1",
    ]
    out = [json.loads(render('"GET %s HTTP/1.1" %d', line, 200))["message"] for line in lines]
    assert out == [
        '"GET /admin/accounts/user/?q=[redacted] HTTP/1.1" 200',
        '"GET /admin/accounts/user/?q=[redacted]&o=1 HTTP/1.1" 200',
        '"GET /admin/postal/savedaddress/?q=[redacted] HTTP/1.1" 200',
        '"GET /admin/accounts/user/7/change/?_changelist_filters=o%3D1%26q%3D[redacted] HTTP/1.1"'
        " 200",
        '"GET /admin/accounts/user/7/change/?_changelist_filters=q%3D[redacted]%26o%3D1 HTTP/1.1"'
        " 200",
    ]
    # Every q=, not only the admin's: a citizen may type anything into a search box.
    assert redact_text("/api/v1/catalogue/procedures?q=khai+sinh&limit=20") == (
        "/api/v1/catalogue/procedures?q=[redacted]&limit=20"
    )
    assert redact_text("/x?faq=1&seq=2") == "/x?faq=1&seq=2"


def test_payment_gateway_signatures_are_redacted() -> None:
    secure_hash = "ab" * 64
    url = (
        "/api/v1/payments/vnpay/ipn?vnp_Amount=150000000&vnp_CreateDate=20261206093015"
        "&vnp_PayDate=20261206093102&vnp_TxnRef=PAY-7Q2X&vnp_TransactionNo=14123456"
        f"&vnp_SecureHashType=HmacSHA512&vnp_SecureHash={secure_hash}"
    )
    out = json.loads(render('"GET %s HTTP/1.1" %d', url, 200))["message"]
    assert secure_hash not in out
    assert out == (
        '"GET /api/v1/payments/vnpay/ipn?vnp_Amount=150000000&vnp_CreateDate=20261206093015'
        "&vnp_PayDate=20261206093102&vnp_TxnRef=PAY-7Q2X&vnp_TransactionNo=14123456"
        '&vnp_SecureHashType=HmacSHA512&vnp_SecureHash=[redacted] HTTP/1.1" 200'
    )
    assert json.loads(render("x", vnp_SecureHash=secure_hash))["vnp_SecureHash"] == "[redacted]"


def test_phone_numbers_without_prefix_or_in_groups_are_masked() -> None:
    out = redact_text(
        "a 912345678 b 0912 345 678 c +84 912 345 678 d 84 912 345 678 e 024 3825 1234"
        " f 091 234 5678 g 9704123456781234"
    )
    assert out == (
        "a ******678 b 0******678 c +84 ******678 d 84 ******678 e 0******234"
        " f 0******678 g ******234"
    )


def test_ordinary_numbers_in_log_lines_are_kept() -> None:
    lines = [
        # Request ids (ours are uuid4 hex), access lines, times, addresses, codes.
        "request 4f1c2d3e5a6b7c8d9e0f112233445566 done",
        '203.113.131.200:51234 - "GET /api/v1/dossiers?limit=50 HTTP/1.1" 200',
        "at 2026-12-06T01:02:03+00:00 (2026-12-06 08:02:03)",
        "dossier H01-260101-0001 accepted; job 4821 retried 3 times",
        "X-Amz-Date=20261206T010000Z&vnp_CreateDate=20261206093015",
        "reconciliation 2026-12-05: 2 mismatch(es); 84.212.233.101 and 10.100.200.123",
        "payment amount=250000000 paid_at_time=1765000000",
    ]
    for line in lines:
        assert redact_text(line) == line, line


def _handlers_reached(name: str) -> list[logging.Handler]:
    """The handlers a record of logger `name` goes to (pytest's own left out)."""
    logger: logging.Logger | None = logging.getLogger(name)
    found: list[logging.Handler] = []
    while logger is not None:
        found += [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")]
        if not logger.propagate:
            break
        logger = logger.parent
    return found


def test_django_records_reach_only_the_redacting_handler_in_debug(settings) -> None:
    settings.DEBUG = True  # `make run`: Django's own console handler would print too
    token = signing.dumps({"a": "0b6c0a4e-93d1-4f7e-9d65-3f1e2a1c9b10"}, salt="any")
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)  # what django.setup() does
    try:
        for name in ("django.request", "django.server", "django.security.csrf"):
            handlers = _handlers_reached(name)
            assert handlers == logging.getLogger().handlers, name
            for handler in handlers:
                assert any(isinstance(f, RedactingFilter) for f in handler.filters), name

        [console] = _handlers_reached("django.request")
        assert isinstance(console, logging.StreamHandler)
        out = io.StringIO()
        previous = console.setStream(out)
        try:
            logging.getLogger("django.request").warning(
                "Not Found: %s", f"/api/v1/agency/files/{token}", extra={"status_code": 404}
            )
        finally:
            console.setStream(previous)
        [line] = out.getvalue().splitlines()
        assert json.loads(line)["message"] == "Not Found: /api/v1/agency/files/[redacted]"
    finally:
        configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


def test_integer_arguments_are_kept_and_the_text_around_them_redacted() -> None:
    # Ids and counts are integers (a push delivery's id passes 100000 soon, and would
    # read as a one-time code); codes, phones and citizen IDs are text.
    out = json.loads(
        render(
            "push delivery %s refused; deliveries %s; %s; %s rows; otp %s phone %s",
            105639,
            [105641, 1234567890],
            "105640, 123456789",
            7,
            "123456",
            "0912345678",
        )
    )["message"]
    assert out == (
        "push delivery 105639 refused; deliveries 105641, 1234567890; [redacted], ******789;"
        " 7 rows; otp [redacted] phone 0******678"
    )
    assert "0912345678" not in out
    assert "\x00" not in out
