"""SQL compiled by the ORM once and replayed: the part the compiled reads and writes share.

Three helpers send a statement the ORM compiled once instead of compiling it on every
call: `backend.joined_read.JoinedRead` (a row by key), `backend.compiled_rows.CompiledRows`
(a `values_list` page, once per shape) and `backend.row_writes` (an UPDATE by key and an
INSERT). What they have in common is here, once:

- `StatementCache`: what was compiled, per key (a database alias, a shape, a model's
  columns), made once and shared by every thread; optionally only the most recently used;
- `CompiledSelect`: a statement as the compiler wrote it, with the places of the call's
  values among its parameters (found by markers: values that stand for them while it is
  compiled) and the converters of its columns;
- `converters_of` and `convert`: a column's value as the ORM gives it (a JSONField's
  `from_db_value`, a moment's time zone), from the compiler's converters.

What stays with each helper, because it differs: which cursor runs the statement (prepared
through the pool by `joined_read.preparing_cursor`, or Django's own), how rows are fetched
and turned into instances or tuples, and where a statement may be replayed at all (a
marker's parameter is as the backend prepares it: `CompiledRows` replays on PostgreSQL
only, `JoinedRead` prepares its key as the ORM does on any database).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Converter = Callable[[Any, Any, Any], Any]
# (position of the column, its converters, its expression), as `get_converters` gives them.
Converters = tuple[tuple[int, tuple[Converter, ...], Any], ...]


class StatementCache(Generic[K, V]):
    """Statements (or whatever a compile makes) per key, each made once.

    `most`: keep only that many, the least recently used going first (None: all, for
    keys of a bounded set such as database aliases or a model's columns). A statement is
    made outside the lock: two threads may both make it the first time, and both then use
    the one kept first.
    """

    def __init__(self, most: int | None = None) -> None:
        self.most = most
        self._made: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[..., V], *args: Any) -> V:
        """The statement of `key`, made by `make(*args)` if it is not kept."""
        if self.most is None:
            try:
                return self._made[key]  # no lock: a dict read is atomic, nothing moves
            except KeyError:
                pass
        else:
            with self._lock:
                if key in self._made:
                    self._made.move_to_end(key)
                    return self._made[key]
        made = make(*args)
        with self._lock:
            made = self._made.setdefault(key, made)
            if self.most is not None:
                self._made.move_to_end(key)
                while len(self._made) > self.most:
                    self._made.popitem(last=False)
        return made

    def __len__(self) -> int:
        return len(self._made)


def converters_of(compiler: SQLCompiler, expressions: Sequence[Any]) -> Converters:
    """The converters of the columns `expressions` (in the order of the row)."""
    return tuple(
        (position, tuple(functions), expression)
        for position, (functions, expression) in compiler.get_converters(list(expressions)).items()
    )


def convert(row: list[Any], converters: Converters, connection: BaseDatabaseWrapper) -> list[Any]:
    """`row` (changed in place) with each converted column as the ORM gives it."""
    for position, functions, expression in converters:
        value = row[position]
        for function in functions:
            value = function(value, expression, connection)
        row[position] = value
    return row


def _equal(param: Any, expected: Any) -> bool:
    # A parameter of another type (psycopg's Int2 wrapper, a datetime beside a UUID,
    # True beside 1) is never the marker; == between them may not even be defined.
    return type(param) is type(expected) and param == expected


@dataclass(frozen=True)
class CompiledSelect:
    """A SELECT as the ORM's compiler wrote it: its text, its parameters (a call's values
    go at `places`: (name, index among the parameters)) and its columns' converters."""

    sql: str
    params: tuple[Any, ...]
    places: tuple[tuple[str, int], ...]
    converters: Converters

    @classmethod
    def of(
        cls, compiler: SQLCompiler, markers: Mapping[str, tuple[Any, int]]
    ) -> CompiledSelect | None:
        """What `compiler` sends, its query built with markers for the call's values.

        `markers`: name -> (the parameter the ORM made of the marker, how many of the
        statement's parameters it is). None when a marker is not found exactly that many
        times: then it is not only the marker (a constant of the query has its value), and
        replaying the statement could put a call's value in the constant's place.
        """
        sql, params = compiler.as_sql()
        places = []
        for name, (expected, times) in markers.items():
            found = [at for at, param in enumerate(params) if _equal(param, expected)]
            if len(found) != times:
                return None
            places += [(name, at) for at in found]
        return cls(
            sql=sql,
            params=tuple(params),
            places=tuple(places),
            converters=converters_of(compiler, [column for column, _, _ in compiler.select]),
        )

    def bind(self, values: Mapping[str, Any]) -> list[Any]:
        """The statement's parameters with a call's `values` (name -> parameter) in place."""
        params = list(self.params)
        for name, at in self.places:
            params[at] = values[name]
        return params
