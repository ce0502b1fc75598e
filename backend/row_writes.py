"""`save(update_fields=...)` and `objects.create` for the hottest writes, the SQL made once.

The ORM builds a statement's query on every save: for an UPDATE the queryset
filtered by the key, the update compiler, the WHERE node, the assignments; for an
INSERT the insert query and its compiler. On the path of every paid callback that
cost 0.35-0.7 ms of client CPU per statement, three to four times sending the
statement and reading the answer (docs/performance.md). `save_fields` and
`create_row` write the same columns with the same values: the SQL text is made
once per database alias (an INSERT's by the ORM's own compiler), and the values
are prepared per call as the ORM prepares them (`pre_save`, so `auto_now` fields
move; `get_db_prep_save`, so a UUID, a moment or a JSON value is written as the
database expects). Through the pool (DATABASE_POOL) the statement is prepared once
per connection, as the reads of backend/joined_read.py are: the values are bound by
the server, not quoted into the text by psycopg on every call.

What it does not do: no `pre_save`/`post_save` signals (the project sends none and
listens to none, STYLE.md), no parents of multi-table inheritance, no expressions as
values (an F() or a function: use the ORM for those), and `create_row` only makes new
rows: with an auto key, the database gives it; with a key of another kind, the
instance carries it, made in Python by its default (a UUID), as `objects.create` does.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connections, models, router
from django.db.models.expressions import DatabaseDefault
from django.db.models.sql import InsertQuery

from backend.compiled_sql import Converters, StatementCache, convert, converters_of
from backend.joined_read import preparing_cursor

if TYPE_CHECKING:
    _Statement = tuple[str, list[models.Field[Any, Any]]]
    _Insert = tuple[str, list[models.Field[Any, Any]], Converters]
_made: StatementCache[tuple[str, type[models.Model], tuple[str, ...]], _Statement] = (
    StatementCache()
)
_inserts: StatementCache[tuple[str, type[models.Model], tuple[bool, ...]], _Insert] = (
    StatementCache()
)


def _fields(model: type[models.Model], names: Sequence[str]) -> list[models.Field[Any, Any]]:
    fields = []
    for name in names:
        field = model._meta.get_field(name)
        if not isinstance(field, models.Field) or not field.concrete or field.primary_key:
            raise ValueError(f"{model.__name__}.{name} is not a column that can be updated")
        fields.append(field)
    return fields


def _statement(db: str, model: type[models.Model], names: tuple[str, ...]) -> _Statement:
    """The UPDATE of `names` by primary key, and their fields (made once per alias)."""
    return _made.get((db, model, names), _update, db, model, names)


def _update(db: str, model: type[models.Model], names: tuple[str, ...]) -> _Statement:
    quote = connections[db].ops.quote_name
    fields = _fields(model, names)
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    # Only the model's own table and column names, quoted, go into the text; the
    # values travel as parameters.
    table, key_column = quote(model._meta.db_table), quote(model._meta.pk.column)
    sql = f"UPDATE {table} SET {assignments} WHERE {key_column} = %s"  # noqa: S608  # nosec B608
    return sql, fields


def save_fields(instance: models.Model, names: Sequence[str]) -> None:
    """Write `names` of `instance` (a saved row), as `instance.save(update_fields=names)`."""
    model = type(instance)
    if model._meta.parents:
        raise ValueError(f"{model.__name__} inherits another model: use save(update_fields=...)")
    db = instance._state.db or router.db_for_write(model, instance=instance)
    connection = connections[db]
    sql, fields = _statement(db, model, tuple(names))
    values = []
    for field in fields:
        value = field.pre_save(instance, False)
        if hasattr(value, "resolve_expression"):
            raise ValueError(f"{model.__name__}.{field.name} is an expression: use save()")
        values.append(field.get_db_prep_save(value, connection))
    values.append(model._meta.pk.get_db_prep_value(instance.pk, connection))
    with preparing_cursor(connection) as cursor:
        cursor.execute(sql, values)
        updated = cursor.rowcount
    if updated != 1:
        # What the ORM raises when a save with update_fields finds no row.
        raise DatabaseError("Save with update_fields did not affect any rows.")
    instance._state.db = db
    instance._state.adding = False


def _inserted_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """What `Model.save()` writes into a new row: every column but an auto key (the
    database gives it) and generated ones; a key of another kind is written."""
    meta = model._meta
    if meta.parents:
        raise ValueError(f"{model.__name__} inherits another model: use save()")
    return [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]


def _insert(db: str, instance: models.Model, defaults: tuple[bool, ...]) -> _Insert:
    """The INSERT (... RETURNING, when the database gives values) of `instance`'s model
    as the ORM's compiler writes it
    (per alias, and per which fields are left to their database default), the fields
    it returns and their converters (made once)."""
    return _inserts.get((db, type(instance), defaults), _compile_insert, db, instance, defaults)


def _compile_insert(db: str, instance: models.Model, defaults: tuple[bool, ...]) -> _Insert:
    model = type(instance)
    meta = model._meta
    query = InsertQuery(model)
    # A copy: compiling calls `pre_save` again, which would move an `auto_now_add`
    # moment of `instance` after its value was taken for the parameters.
    query.insert_values(_inserted_fields(model), [copy.copy(instance)])
    compiler = query.get_compiler(using=db)
    compiler.returning_fields = meta.db_returning_fields
    [(sql, params)] = compiler.as_sql()
    if len(params) != defaults.count(False):  # a default with parameters of its own
        raise ValueError(f"{model.__name__}: its database defaults cannot be replayed")
    returned = list(meta.db_returning_fields)
    converters = converters_of(compiler, [field.get_col(meta.db_table) for field in returned])
    return sql, returned, converters


def create_row(instance: models.Model) -> None:
    """Insert `instance` (new), as `objects.create` does: afterwards it has its key (an
    auto key from the database) and the other values the database gave (RETURNING).
    A model whose key is not an auto key needs it on the instance (its default, made
    when the instance was: a UUID)."""
    model = type(instance)
    db = router.db_for_write(model, instance=instance)
    connection = connections[db]
    fields = _inserted_fields(model)
    auto_key = model._meta.auto_field is not None
    new = instance._state.adding and (instance.pk is None) == auto_key
    if not connection.features.can_return_columns_from_insert or not new:
        raise ValueError(
            f"{model.__name__}: create_row needs a new row (its key "
            f"{'left to the database' if auto_key else 'made in Python'}) and RETURNING"
        )
    values = [field.pre_save(instance, True) for field in fields]
    for field, value in zip(fields, values, strict=True):
        if hasattr(value, "resolve_expression") and not isinstance(value, DatabaseDefault):
            raise ValueError(f"{model.__name__}.{field.name} is an expression: use save()")
    defaults = tuple(isinstance(value, DatabaseDefault) for value in values)
    sql, returned, converters = _insert(db, instance, defaults)
    params = [
        field.get_db_prep_save(value, connection)
        for field, value, default in zip(fields, values, defaults, strict=True)
        if not default
    ]
    with preparing_cursor(connection) as cursor:
        cursor.execute(sql, params)
        row = list(connection.ops.fetch_returned_insert_columns(cursor, ())) if returned else []
    convert(row, converters, connection)
    for field, value in zip(returned, row, strict=True):
        setattr(instance, field.attname, value)
    instance._state.db = db
    instance._state.adding = False
