"""`select_related` for the hottest reads, with less work per query.

A queryset with `select_related` and `only` costs more Python to compile and to
turn into objects than the database takes to answer it (see the README,
Performance). For a read made on nearly every request (a dossier, polled by the
app), `JoinedRead` asks for the same columns with `values_list` and builds the
instances itself with `Model.from_db`, as the ORM does: fields not asked for are
deferred (read on first access), and the related instances are cached on the
main one. It pays off when few of many columns are read: with every column of
both models (the bearer's session and its user) it saves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from django.db import models
from django.db.models import QuerySet

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


class JoinedRead(Generic[M]):
    """One row of `model` and of some of its foreign keys, from one query.

    `fields`: the model's own fields to load (None: all). `related`: foreign key
    name -> the related model's fields to load (None: all). `annotations`: extra
    expressions, set as attributes of the instance.
    """

    def __init__(
        self,
        model: type[M],
        fields: Sequence[str] | None = None,
        related: Mapping[str, Sequence[str] | None] | None = None,
        annotations: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
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
        # Built once: a queryset is lazy, and every read filters a copy of it.
        self.rows: QuerySet[M, tuple[Any, ...]] = model._default_manager.annotate(
            **(annotations or {})
        ).values_list(*columns, *self.annotation_names)

    def get(self, **filters: Any) -> M:
        """The one instance matching `filters`; `model.DoesNotExist` otherwise."""
        rows = self.rows.filter(**filters)
        row = rows.get()
        db = rows.db
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
