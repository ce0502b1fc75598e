"""The one way the API writes a moment: RFC 3339 in UTC, milliseconds, `Z`.

`2026-11-24T03:15:02.118Z`, everywhere: REST bodies (the JSON renderer of
backend.api), event `data` (the log, WebSocket frames, the timeline), WebSocket
`time`, push payloads. Business time (Asia/Ho_Chi_Minh) is for texts people read;
a client shows a moment in the user's zone. Dates without a time stay `YYYY-MM-DD`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.db.models import CharField, Func
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from backend.errors import field_error


def rfc3339(moment: dt.datetime) -> str:
    """`moment` (aware) as the API writes it."""
    if timezone.is_naive(moment):
        raise ValueError("a naive datetime has no place in the API")
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_or_none(moment: dt.datetime | None) -> str | None:
    return rfc3339(moment) if moment else None


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)  # without ASCII, \d is any script's digit


def date_text(value: Any) -> Any:
    """A pydantic `mode="before"` check of a calendar date: `YYYY-MM-DD` text only.

    pydantic would read a bare number as seconds since 1970 (`0` is 1970-01-01) and
    a datetime's text as its date.
    """
    if value is not None and not (isinstance(value, str) and ISO_DATE.fullmatch(value)):
        raise ValueError(_("Use the format YYYY-MM-DD."))
    return value


def form_date_text(request: Any, field: str) -> None:
    """A multipart form's date field as `date_text` wants it (a `Form[dt.date]`
    parameter has no validator of its own): 422 `value_error` on `field` otherwise."""
    raw = request.POST.get(field)
    if raw not in (None, "") and not ISO_DATE.fullmatch(raw):
        raise field_error(field, "value_error", _("Use the format YYYY-MM-DD."), "form")


def moment_text(value: Any) -> Any:
    """A pydantic `mode="before"` check of a moment: text (RFC 3339), not a bare number
    pydantic would read as seconds since 1970."""
    if value is not None and not isinstance(value, str):
        raise ValueError(_("Use RFC 3339 with the time zone, e.g. 2026-03-10T08:00:00+07:00."))
    return value


class Rfc3339Text(Func):
    """A moment column as `rfc3339` writes it, written by PostgreSQL.

    For a page of many moments (the agency feed's 1,500): no datetime parsed from the
    row and formatted again in Python. `to_char`'s MS truncates to the millisecond as
    `isoformat(timespec="milliseconds")` does (tests/backend/test_times.py); NULL stays
    NULL.
    """

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    output_field = CharField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        # The embedded default: Django keeps a moment as UTC text, "YYYY-MM-DD
        # HH:MM:SS[.ffffff]" (no fraction when it is 0), so the digits are cut, not
        # rounded, as PostgreSQL's MS does (SQLite's strftime %f rounds).
        return self.as_sql(
            compiler,
            connection,
            template=(
                "(substr(%(expressions)s, 1, 10) || 'T' || substr(%(expressions)s, 12, 8)"
                " || '.' || substr(substr(%(expressions)s, 21) || '000', 1, 3) || 'Z')"
            ),
            **extra_context,
        )


def rfc3339_sql(column: str) -> str:
    """`Rfc3339Text` in a statement written by hand (a constant column reference)."""
    return Rfc3339Text.template % {"expressions": column}


class ApiJSONEncoder(NinjaJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime) and timezone.is_aware(o):
            return rfc3339(o)
        return super().default(o)


class ApiJSONRenderer(JSONRenderer):
    encoder_class = ApiJSONEncoder


def json_response(data: Any, status: int = 200) -> HttpResponse:
    """`data` as the API's renderer writes a route's answer (same bytes, same headers).

    For a route that writes its own body (the agency feed: a page too large to be worth
    validating what the route itself built). Its moments must be strings already
    (`rfc3339`), or the encoder writes each through its Python `default`.
    """
    renderer = ApiJSONRenderer()
    return HttpResponse(
        renderer.render(None, data, response_status=status),  # type: ignore[arg-type]
        status=status,
        content_type=f"{renderer.media_type}; charset={renderer.charset}",
    )
