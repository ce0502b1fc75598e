"""`column = ANY(ARRAY(subquery))`: a membership test PostgreSQL can use an index for.

`Q(a=x) | Q(b__in=subquery)` compiles to `a = x OR b IN (SELECT ...)`, which
PostgreSQL runs as a hashed subplan evaluated on every row: a sequential scan
of the whole table (no index can answer an OR with a subplan in it). Written
as `b = ANY(ARRAY(SELECT ...))` the subquery runs once, first (an InitPlan),
and its array is an ordinary parameter: `a = x OR b = ANY($1)` becomes a
BitmapOr of two index scans, and `b = ANY($1)` alone an index scan per element.
The planner also takes such an array for a short one (a handful of elements),
which is what an audience (a user's dossiers) is: it probes a per-dossier
index instead of walking a global one (tracking/stream.py).

On SQLite (embedded default) it is the plain `IN (SELECT ...)`.

`IdIn` is the same test against a list of keys given by the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, F, Func, QuerySet, Subquery
from django.db.models.sql.compiler import SQLCompiler


class AnyOf(Func):
    """True where `column` (a field name or path, e.g. "dossier__organisation_id")
    is one of the values of the one-column `subquery`. Use it in `filter()` or
    combined with `Q` objects."""

    output_field = BooleanField()

    def __init__(self, column: str, subquery: QuerySet[Any]) -> None:
        super().__init__(F(column), Subquery(subquery))

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[Any, ...]]:
        column, subquery = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        subquery_sql, subquery_params = compiler.compile(subquery)
        # `subquery_sql` is "(SELECT ...)", compiled by the ORM: no request text in it.
        return f"{column_sql} = ANY(ARRAY{subquery_sql})", (*column_params, *subquery_params)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[Any, ...]]:
        column, subquery = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        subquery_sql, subquery_params = compiler.compile(subquery)
        return f"{column_sql} IN {subquery_sql}", (*column_params, *subquery_params)


class IdIn(Func):
    """True where `column` (a key: an integer or a UUID, e.g. "pk", "user_id") is one
    of `ids`, sent as one array parameter: `column = ANY(%s::bigint[])` (`uuid[]`).

    `filter(pk__in=ids)` makes one parameter per id, each prepared by the field and
    quoted by psycopg in Python, and a statement whose text grows with the list (so
    psycopg parses it again each time): for the 50 to 125 ids of a push worker's
    claim, lease or hand-off that was most of the statement's client CPU. The array
    goes as its text form (`{1,2,3}`), which the statement casts: psycopg would dump
    a list element by element. On SQLite (embedded default) it is the plain
    `IN (...)`, each value prepared by the column's field."""

    output_field = BooleanField()

    def __init__(self, column: str, ids: Iterable[int | uuid.UUID | str]) -> None:
        super().__init__(F(column))
        self.ids = keys(ids)
        self.array_type = "uuid" if self.ids and isinstance(self.ids[0], uuid.UUID) else "bigint"

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[Any, ...]]:
        (column,) = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        return f"{column_sql} = ANY(%s::{self.array_type}[])", (*column_params, _text(self.ids))

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[Any, ...]]:
        (column,) = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        if not self.ids:
            return "1 = 0", ()
        field = column.output_field
        values = [field.get_db_prep_value(value, connection) for value in self.ids]
        placeholders = ", ".join(["%s"] * len(values))
        return f"{column_sql} IN ({placeholders})", (*column_params, *values)


def keys(values: Iterable[int | uuid.UUID | str]) -> list[Any]:
    """`values` as integers, or as UUIDs if the first is not an integer."""
    found = list(values)
    if found and not isinstance(found[0], int):
        return [uuid.UUID(str(value)) for value in found]
    return [int(value) for value in found]


def array(values: Iterable[int | uuid.UUID | str]) -> str:
    """Keys (integers, or UUIDs) as the text form of a PostgreSQL array, `{1,2,3}`, for
    a parameter the statement casts (`%s::bigint[]`, `%s::uuid[]`): psycopg dumps a
    list element by element, in Python. Neither form can hold a comma or a brace."""
    return _text(keys(values))


def _text(found: list[Any]) -> str:
    """Keys already made by `keys` as an array's text form (not converted again)."""
    return "{" + ",".join(str(value) for value in found) + "}"
