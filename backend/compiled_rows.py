"""The rows of a `values_list` queryset, its SQL compiled by the ORM once per shape.

A page read on every poll (the agency feed) spent more Python building and compiling
its queryset than PostgreSQL took to answer it: about 1.9 ms for the dossiers (four
tables, eight computed columns) and 1.2 ms for their papers, out of 10 ms of CPU a
page. The statement's text depends only on the query's shape (which agency, how many
rows, with or without a cursor); what changes from call to call is a few values.

`CompiledRows` asks the ORM for the statement once per shape, built with markers
(unique values) in place of the call's values, finds each marker among the statement's
parameters, and then runs that SQL with each call's values put in their places. The
queryset is still the one source of the statement (an access rule such as
`agency_dossiers` is not copied into SQL written by hand), and the rows are what
`values_list` returns: the same columns in the same order, through the fields'
converters (a JSONField's `from_db_value`).

The shape must determine everything the statement holds apart from the markers: a
value the builder reads elsewhere (the clock, a setting) is frozen in the cached
statement. Where a marker is not exactly as many parameters as it says (one, unless
told), or off PostgreSQL (the embedded default), each call runs the queryset through
the ORM instead.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.db.models import QuerySet

from backend.compiled_sql import CompiledSelect, StatementCache, convert
from backend.joined_read import preparing_cursor


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Marker:
    """A call's value as the builder receives it (`value`: unique among the statement's
    parameters) and the parameter the ORM makes of a value (`param`). `times`: how many
    of the statement's parameters it is (a value the builder puts in several places)."""

    value: Any
    param: Callable[[Any], Any] = field(default=_same)
    times: int = 1


@dataclass(frozen=True)
class _Statement:
    db: str
    compiled: CompiledSelect


class CompiledRows:
    """`list(build(**values))` for a `values_list` queryset, compiled once per shape.

    `markers`: name -> Marker, for every value a call may pass. `shapes`: how many
    compiled statements to keep (the least recently used goes first). `prepare`: run
    them through `joined_read.preparing_cursor` (prepared with the pool), for a statement
    of few shapes (each is one prepared statement per connection)."""

    def __init__(
        self, markers: Mapping[str, Marker], shapes: int = 256, *, prepare: bool = False
    ) -> None:
        self.markers = dict(markers)
        self.shapes = shapes
        self.prepare = prepare
        self._statements: StatementCache[Hashable, _Statement | None] = StatementCache(shapes)

    def rows(
        self,
        shape: Hashable,
        build: Callable[..., QuerySet[Any, tuple[Any, ...]]],
        **values: Any,
    ) -> list[tuple[Any, ...]]:
        """The rows of `build(**values)`. `shape`: what, besides the names of `values`,
        decides the statement's text (and every parameter that is not a marker)."""
        key = (shape, frozenset(values))
        statement = self._statements.get(key, self._compile, build, values)
        if statement is None:
            return list(build(**values))
        connection = connections[statement.db]
        compiled = statement.compiled
        params = compiled.bind(
            {name: self.markers[name].param(value) for name, value in values.items()}
        )
        with preparing_cursor(connection) if self.prepare else connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if not compiled.converters:
            return rows
        return [tuple(convert(list(row), compiled.converters, connection)) for row in rows]

    def _compile(
        self, build: Callable[..., QuerySet[Any, tuple[Any, ...]]], values: Mapping[str, Any]
    ) -> _Statement | None:
        queryset = build(**{name: self.markers[name].value for name in values})
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        markers = {}
        for name in values:
            marker = self.markers[name]
            markers[name] = (marker.param(marker.value), marker.times)
        compiled = CompiledSelect.of(queryset.query.get_compiler(using=queryset.db), markers)
        return None if compiled is None else _Statement(db=queryset.db, compiled=compiled)
