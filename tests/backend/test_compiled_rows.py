"""backend/compiled_rows.py: a values_list queryset's rows, its SQL compiled once per shape."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from backend.compiled_rows import CompiledRows, Marker
from dossiers.models import Dossier
from tests.factories import make_agency, make_dossier, make_procedure

pytestmark = pytest.mark.django_db

MARKERS = {
    "after": Marker(dt.datetime(1970, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)),
    "code": Marker("marker-code"),
}


def dossiers(after: dt.datetime, code: str | None = None) -> Any:
    queryset = Dossier.objects.filter(submitted_at__gt=after)
    if code is not None:
        queryset = queryset.filter(code__gte=code)
    return queryset.order_by("submitted_at").values_list("id", "code", "form_data", "submitted_at")


@pytest.fixture
def compiled() -> Iterator[list[str]]:
    """The SQL the ORM compiles while the test runs."""
    made: list[str] = []
    as_sql = SQLCompiler.as_sql

    def counting(self: SQLCompiler, *args: Any, **kwargs: Any) -> Any:
        sql, params = as_sql(self, *args, **kwargs)
        made.append(sql)
        return sql, params

    with mock.patch.object(SQLCompiler, "as_sql", counting):
        yield made


@pytest.fixture
def seeded() -> list[Dossier]:
    procedure = make_procedure(make_agency())
    start = timezone.now() - dt.timedelta(days=10)
    return [
        make_dossier(
            procedure=procedure,
            status=status,
            submitted_at=start + dt.timedelta(days=n),
            form_data={"n": n, "tên": "Nguyễn"},
        )
        for n, status in enumerate([Dossier.Status.NEW, Dossier.Status.PROCESSING] * 3)
    ]


def test_a_shape_is_compiled_once_and_each_call_reads_its_own_values(
    seeded: list[Dossier], compiled: list[str]
) -> None:
    rows = CompiledRows(MARKERS)
    moments = [d.submitted_at for d in seeded]
    codes = [d.code for d in seeded]
    first = rows.rows("by time", dossiers, after=moments[0])
    assert len(compiled) == 1
    second = rows.rows("by time", dossiers, after=moments[3])
    by_code = rows.rows("by time", dossiers, after=moments[0], code=codes[2])
    again = rows.rows("by time", dossiers, after=moments[3], code=codes[1])
    # One statement without the code and one with it; none compiled for a call.
    assert len(compiled) == 2
    compiled.clear()
    assert first == list(dossiers(moments[0]))
    assert [row[2]["n"] for row in first] == [1, 2, 3, 4, 5]  # the JSON field's converter ran
    assert second == list(dossiers(moments[3]))
    assert by_code == list(dossiers(moments[0], codes[2]))
    assert again == list(dossiers(moments[3], codes[1]))
    assert (len(second), len(by_code), len(again)) == (2, 4, 2)


def test_a_marker_found_twice_among_the_parameters_leaves_every_call_to_the_orm(
    seeded: list[Dossier], compiled: list[str]
) -> None:
    def twice(after: dt.datetime) -> Any:
        return dossiers(after).filter(created_at__gt=after)

    rows = CompiledRows(MARKERS)
    after = seeded[2].submitted_at
    found = [rows.rows("twice", twice, after=after) for _ in range(3)]
    assert len(compiled) == 4  # the attempt, then the ORM on each call
    compiled.clear()
    assert found == [list(twice(after))] * 3


def test_only_the_last_shapes_are_kept(seeded: list[Dossier], compiled: list[str]) -> None:
    rows = CompiledRows(MARKERS, shapes=2)
    after = seeded[0].submitted_at
    for shape in ("a", "b", "c", "a", "c"):
        rows.rows(shape, dossiers, after=after)
    assert len(compiled) == 4  # "a" was dropped for "c", then compiled again


def test_a_marker_said_to_be_in_two_places_takes_the_calls_value_in_both(
    seeded: list[Dossier], compiled: list[str]
) -> None:
    def twice(after: dt.datetime) -> Any:
        return dossiers(after).filter(created_at__gt=after)

    rows = CompiledRows({"after": Marker(MARKERS["after"].value, times=2)})
    found = [rows.rows("twice", twice, after=seeded[n].submitted_at) for n in (2, 4)]
    assert len(compiled) == 1  # compiled once, then replayed
    compiled.clear()
    assert found == [list(twice(seeded[n].submitted_at)) for n in (2, 4)]
    assert [len(rows) for rows in found] == [3, 1]
