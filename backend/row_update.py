"""`instance.save(update_fields=...)` for the hottest writes, with the SQL built once.

The ORM builds an UPDATE's query on every save: the queryset filtered by the key,
the update compiler, the WHERE node, the assignments. On the path of every paid
callback that cost 0.35-0.45 ms of client CPU per statement, three to four times
sending the statement and reading the answer (docs/performance.md). `save_fields`
writes the same columns with the same values: the SQL text of a (model, fields)
pair is made once per database alias, and the values are prepared per call as the
ORM prepares them (`pre_save`, so `auto_now` fields move; `get_db_prep_save`, so a
UUID or a moment is written as the database expects).

What it does not do: no `pre_save`/`post_save` signals (the project sends none and
listens to none, STYLE.md), no parents of multi-table inheritance, no expressions as
values (an F() or a function: use `save(update_fields=...)` for those).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connections, models, router

if TYPE_CHECKING:
    _Statement = tuple[str, list[models.Field[Any, Any]]]
_made: dict[tuple[str, type[models.Model], tuple[str, ...]], _Statement] = {}
_making = threading.Lock()


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
    key = (db, model, names)
    try:
        return _made[key]
    except KeyError:
        pass
    quote = connections[db].ops.quote_name
    fields = _fields(model, names)
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    # Only the model's own table and column names, quoted, go into the text; the
    # values travel as parameters.
    table, key_column = quote(model._meta.db_table), quote(model._meta.pk.column)
    sql = f"UPDATE {table} SET {assignments} WHERE {key_column} = %s"  # noqa: S608  # nosec B608
    with _making:
        return _made.setdefault(key, (sql, fields))


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
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        updated = cursor.rowcount
    if updated != 1:
        # What the ORM raises when a save with update_fields finds no row.
        raise DatabaseError("Save with update_fields did not affect any rows.")
    instance._state.db = db
    instance._state.adding = False
