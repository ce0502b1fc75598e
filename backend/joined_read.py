"""`select_related` for the hottest reads, with less work per query.

A queryset with `select_related` and `only` costs more Python to compile and to
turn into objects than the database takes to answer it (see the README,
Performance). For a read made on nearly every request (a dossier, polled by the
app), `JoinedRead` asks for the same columns with `values_list` and builds the
instances itself with `Model.from_db`, as the ORM does: fields not asked for are
deferred (read on first access), and the related instances are cached on the
main one. It pays off when few of many columns are read.

A read by primary key alone (`get(pk=...)`) also skips compiling: the SQL, the
order of its columns and their converters are compiled once per database alias
(the ORM compiles the same text on every call, which costs more than the rest of
the read) and executed with the key in its place among the parameters. That part
pays off even with every column of both models (the bearer's session and its user).
With the pool (DATABASE_POOL) the statement is also prepared: see `preparing_cursor`.

`for_update` makes it a locking read (`select_for_update()`) of the model's own row,
for the hot paths of a write (the wallet's attach), inside the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

import psycopg
from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import QuerySet
from django.db.models.query import MAX_GET_RESULTS
from django.db.transaction import TransactionManagementError

from backend.compiled_sql import CompiledSelect, StatementCache, convert

M = TypeVar("M", bound=models.Model)


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.concrete:
        raise ValueError(f"{model.__name__}.{name} is not a column of its table")
    return field


def _in_model_order(model: type[models.Model], names: Sequence[str] | None) -> list[str]:
    """Attribute names of `model`'s concrete fields (all, or those in `names`), in the
    order `Model.from_db` expects them."""
    fields = model._meta.concrete_fields
    if names is None:
        return [field.attname for field in fields]
    wanted = {_field(model, name).attname for name in names}
    wanted.add(model._meta.pk.attname)  # always: from_db needs it, None means no row
    return [field.attname for field in fields if field.attname in wanted]


_ONLY_WHEN_ASKED = 2**31 - 1  # executions before psycopg prepares a statement by itself


class _PreparingCursor(psycopg.Cursor[Any]):
    """Server-side binding, and every statement prepared (psycopg keeps the names per
    connection, at most `prepared_max` of them, 100 by default)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(query, params, prepare=True)


def prepares(connection: BaseDatabaseWrapper) -> bool:
    """Whether reads by key are server-side prepared statements on `connection`:
    PostgreSQL through the process's pool (DATABASE_POOL), whose connections live
    long enough for a statement prepared once to be executed many times."""
    return connection.vendor == "postgresql" and getattr(connection, "pool", None) is not None


def preparing_cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor of `connection` as `connection.cursor()` makes it (Django's wrapper:
    errors mapped, execute wrappers, queries logged when asked), which prepares its
    statements when `prepares(connection)`. For statements of constant text only
    (these reads, backend/row_writes.py, the payment callback's plain read): each
    text is one prepared statement per connection.

    PostgreSQL then plans the statement once per connection instead of on every
    read: planning the dossier read (4 tables) costs it 0.3-0.4 ms, more than
    running it (0.05-0.15 ms), on the same cores as the server. Django turns
    psycopg's preparation off (`prepare_threshold=None`, for transaction poolers
    such as PgBouncer before 1.21, which DATABASE_POOL replaces): this turns it
    back on for the statements that ask for it, these reads only.
    """
    if not prepares(connection):
        return connection.cursor()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    pooled = connection.connection
    if pooled.prepare_threshold is None:
        # psycopg then prepares only what asks for it (Django's own cursors bind on
        # the client and never do), and keeps track of what would invalidate them.
        pooled.prepare_threshold = _ONLY_WHEN_ASKED
    raw: Any = _PreparingCursor(pooled)  # what Django wraps: a DB-API cursor
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


class _NotCompilable(Exception):
    """The query's shape is not the one `_compile` knows how to replay."""


class JoinedRead(Generic[M]):
    """One row of `model` and of some of its foreign keys, from one query.

    `fields`: the model's own fields to load (None: all). `related`: foreign key
    name -> the related model's fields to load (None: all). `annotations`: extra
    expressions, set as attributes of the instance. `for_update`: lock the row until
    the transaction ends (`SELECT ... FOR UPDATE`; only inside `transaction.atomic()`,
    as the ORM requires, and without `related`: a row of a nullable foreign key
    cannot be locked through its outer join, nor should it be locked by accident).
    """

    def __init__(
        self,
        model: type[M],
        fields: Sequence[str] | None = None,
        related: Mapping[str, Sequence[str] | None] | None = None,
        annotations: Mapping[str, Any] | None = None,
        *,
        for_update: bool = False,
    ) -> None:
        if for_update and related:
            raise ValueError("a locking read locks its own row only: no related rows")
        self.model = model
        self.for_update = for_update
        self.own = _in_model_order(model, fields)
        self.related: list[tuple[str, type[models.Model], list[str]]] = []
        columns = list(self.own)
        for name, names in (related or {}).items():
            field = _field(model, name)
            if field.attname not in self.own:
                raise ValueError(f"{model.__name__}.{field.attname} must be among the fields")
            target = field.related_model
            if not isinstance(target, type):
                raise ValueError(f"{model.__name__}.{name} is not a foreign key")
            attnames = _in_model_order(target, names)
            self.related.append((name, target, attnames))
            columns += [f"{name}__{attname}" for attname in attnames]
        self.annotation_names = list(annotations or {})
        self.columns = [*columns, *self.annotation_names]
        # Built once: a queryset is lazy, and every read filters a copy of it.
        rows = model._default_manager.annotate(**(annotations or {}))
        if for_update:
            rows = rows.select_for_update()
        self.rows: QuerySet[M, tuple[Any, ...]] = rows.values_list(*self.columns)
        # Per database alias: the compiled read by primary key, or None when this
        # query cannot be replayed (then every read goes through the ORM).
        self._compiled: StatementCache[str, CompiledSelect | None] = StatementCache()

    def get(self, **filters: Any) -> M:
        """The one instance matching `filters`; `model.DoesNotExist` otherwise."""
        if filters.keys() == {"pk"}:
            db = self.rows.db
            if self.for_update:
                self._check_in_transaction(db)
            compiled = self._compiled_for(db)
            if compiled is not None:
                return self._build(db, self._fetch_by_pk(db, compiled, filters["pk"]))
        rows = self.rows.filter(**filters)
        return self._build(rows.db, rows.get())

    @staticmethod
    def _check_in_transaction(db: str) -> None:
        """What the ORM's compiler checks for a locking read, which a compiled one skips:
        outside a transaction the lock would end with the statement."""
        connection = connections[db]
        if connection.get_autocommit() and connection.features.supports_transactions:
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )

    def _build(self, db: str, row: Sequence[Any]) -> M:
        instance = self.model.from_db(db, self.own, row[: len(self.own)])
        start = len(self.own)
        for name, target, attnames in self.related:
            values = row[start : start + len(attnames)]
            start += len(attnames)
            key = values[attnames.index(target._meta.pk.attname)]
            related = None if key is None else target.from_db(db, attnames, values)
            setattr(instance, name, related)
        for name, value in zip(self.annotation_names, row[start:], strict=True):
            setattr(instance, name, value)
        return instance

    def _compiled_for(self, db: str) -> CompiledSelect | None:
        return self._compiled.get(db, self._compile_or_none, db)

    def _compile_or_none(self, db: str) -> CompiledSelect | None:
        try:
            return self._compile(db)
        except _NotCompilable:
            return None

    def _compile(self, db: str) -> CompiledSelect:
        """What `self.rows.get(pk=...)` sends, and where the key goes in its parameters."""
        connection = connections[db]
        pk = self.model._meta.pk
        if not isinstance(pk, models.UUIDField | models.IntegerField):
            raise _NotCompilable(f"{self.model.__name__}'s primary key is {type(pk).__name__}")
        sentinel: Any = uuid.UUID(int=1) if isinstance(pk, models.UUIDField) else 1
        # As QuerySet.get() builds it: no ordering, at most MAX_GET_RESULTS rows.
        rows = self.rows.filter(pk=sentinel).order_by()[:MAX_GET_RESULTS]
        query = rows.query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        if names != self.columns:  # values_list would reorder the columns
            raise _NotCompilable("the columns are not in the order asked for")
        placeholder = pk.get_db_prep_value(sentinel, connection, prepared=False)
        compiled = CompiledSelect.of(query.get_compiler(using=db), {"pk": (placeholder, 1)})
        if compiled is None:
            raise _NotCompilable("the key is not one parameter of the query")
        return compiled

    def _fetch_by_pk(self, db: str, compiled: CompiledSelect, key: Any) -> Sequence[Any]:
        connection = connections[db]
        pk = self.model._meta.pk
        # What the ORM's lookup does with the value (to_python, then the database's type):
        # a malformed key raises the same ValidationError as with `filter(pk=...)`.
        params = compiled.bind({"pk": pk.get_db_prep_value(key, connection, prepared=False)})
        with preparing_cursor(connection) as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchmany(MAX_GET_RESULTS)
        model: Any = self.model
        if not rows:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        if len(rows) > 1:
            raise model.MultipleObjectsReturned(
                f"get() returned more than one {model._meta.object_name}"
            )
        return convert(list(rows[0]), compiled.converters, connection)
