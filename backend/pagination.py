"""Cursor (keyset) pagination for every list.

A cursor is an opaque token holding the sort values of the last item of the
previous page, so pages stay stable while new rows arrive (unlike offsets).
`encode_cursor`/`decode_cursor` are the one cursor codec (the agency feed uses them).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import FloatField, IntegerField, Model, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Schema
from pydantic import BaseModel, Field, create_model

from backend.errors import field_error
from backend.params import QueryParams

M = TypeVar("M", bound=Model)


class PageParams(QueryParams):
    cursor: str | None = Field(
        None, max_length=512, description="`next_cursor` of the previous page"
    )
    limit: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Items per page (default 20). A page holds at most 100 items: a larger "
        "limit is accepted and cut to 100 without an error; follow `next_cursor`.",
    )


@functools.cache
def page_of(item_schema: type[BaseModel]) -> type[BaseModel]:
    """The response schema of a page of `item_schema`: `{items, next_cursor}`."""
    return create_model(
        f"{item_schema.__name__}Page",
        __base__=Schema,
        items=(list[item_schema], ...),  # type: ignore[valid-type]
        next_cursor=(str | None, Field(None, description="Pass as `cursor` for the next page")),
    )


def encode_cursor(values: list[Any]) -> str:
    """The opaque cursor of the sort values of a page's last item (every keyset list)."""
    raw = json.dumps(
        [v.isoformat() if isinstance(v, dt.datetime | dt.date) else v for v in values],
        separators=(",", ":"),
        default=str,
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, count: int) -> list[Any]:
    """The `count` sort values a cursor holds; 422 `invalid_cursor` on a field `cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(values, list) or len(values) != count:
        raise _invalid_cursor()
    return values


def cursor_values(model: type[Model], fields: list[str], cursor: str) -> list[Any]:
    """The sort values a list's cursor holds, each as its model field reads it.

    A cursor comes back from the client: anything but values its fields accept (a
    moment with its offset, a valid id) is the client's mistake, 422 `invalid_cursor`,
    never an error of the server's.
    """
    values = []
    for name, raw in zip(fields, decode_cursor(cursor, len(fields)), strict=True):
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        if not isinstance(raw, cursor_json_type(field)) or isinstance(raw, bool):
            raise _invalid_cursor()
        try:
            value = field.to_python(raw)  # type: ignore[union-attr]
            if isinstance(value, dt.datetime) and not timezone.is_naive(value):
                # In UTC, as PostgreSQL takes it: an offset past its ±15:59 is refused
                # there, and a moment outside years 1..9999 (OverflowError) here.
                value = value.astimezone(dt.UTC)
        except (ValidationError, TypeError, ValueError, OverflowError) as exc:
            raise _invalid_cursor() from exc
        if (
            value is None
            or (isinstance(value, dt.datetime) and timezone.is_naive(value))
            or (isinstance(value, str) and "\x00" in value)  # PostgreSQL text holds no NUL
        ):
            raise _invalid_cursor()
        values.append(value)
    return values


def cursor_json_type(field: Any) -> type | tuple[type, ...]:
    """The JSON type `encode_cursor` writes a value of `field` as: a number for an
    integer (or float) column, text for any other (a moment, an id, a code, a name).

    `to_python` alone takes more: a text column reads the number 5 as "5", an integer
    column the text "7" and the number 1.5 (as 1). Such a cursor was never one of ours.
    """
    if isinstance(field, IntegerField):  # AutoField and BigAutoField included
        return int
    if isinstance(field, FloatField):
        return (int, float)
    return str


def _invalid_cursor() -> Exception:
    return field_error("cursor", "invalid_cursor", _("This cursor is not valid."), "query")


def paginate(
    queryset: QuerySet[M],
    params: PageParams,
    ordering: tuple[str, ...] = ("-created_at", "-id"),
    narrow: Callable[[QuerySet[M], int], QuerySet[M]] | None = None,
) -> tuple[list[M], str | None]:
    """One page of `queryset` in `ordering` (all ascending or all descending; the
    last field unique).

    The cursor is a row value, `(created_at, id) < (x, y)`: PostgreSQL starts an
    index scan at it (an index condition), where the equivalent OR of comparisons is
    a filter over every row before it: a deep page of a large list read and sorted
    thousands of rows.

    `narrow(rows, count)`, if given, gets the ordered queryset after the cursor and
    the number of rows the page reads, and returns the queryset actually read: a
    caller can add a condition that needs both (e.g. `dossiers.access.first_visible`).
    """
    descending = {name.startswith("-") for name in ordering}
    if len(descending) != 1:
        raise ValueError(f"a keyset ordering goes one way: {ordering}")
    limit = min(params.limit or settings.API_PAGE_SIZE_DEFAULT, settings.API_PAGE_SIZE_MAX)
    fields = [name.lstrip("-") for name in ordering]
    queryset = queryset.order_by(*ordering)
    if params.cursor:
        values = cursor_values(queryset.model, fields, params.cursor)
        after = TupleLessThan if descending == {True} else TupleGreaterThan
        queryset = queryset.filter(after(Tuple(*fields), values))
    if narrow is not None:
        queryset = narrow(queryset, limit + 1)
    rows = list(queryset[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor([getattr(last, field) for field in fields])
    return rows, next_cursor
