"""backend/compiled_sql.py: what JoinedRead, CompiledRows and row_writes share."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db.models import Value

from backend.compiled_sql import CompiledSelect, StatementCache
from backend.joined_read import JoinedRead
from dossiers.models import Dossier, DossierEvent
from tests.backend.test_row_writes import an_event
from tests.concurrency import in_threads
from tests.conftest import make_user
from tests.factories import make_dossier, make_procedure


def test_a_statement_is_made_once_per_key_and_every_thread_uses_the_one_kept() -> None:
    cache: StatementCache[str, list[str]] = StatementCache()
    made: list[str] = []

    def make(key: str) -> list[str]:
        made.append(key)
        return [key]

    first = cache.get("default", make, "default")
    assert cache.get("default", make, "default") is first
    assert made == ["default"]
    kept = in_threads(*[lambda: cache.get("other", make, "other")] * 4)
    assert all(statement is kept[0] for statement in kept)  # one list, made at most 4 times
    assert len(cache) == 2


def test_with_a_bound_the_least_recently_used_goes_first() -> None:
    cache: StatementCache[str, str] = StatementCache(most=2)
    made: list[str] = []

    def make(key: str) -> str:
        made.append(key)
        return key.upper()

    for key in ("a", "b", "a", "c", "a", "b"):
        assert cache.get(key, make, key) == key.upper()
    # "b" went for "c" (the least recently used, "a" having been used again), then
    # "c" for "b".
    assert made == ["a", "b", "c", "b"]
    assert len(cache) == 2


@pytest.mark.django_db
def test_a_marker_is_found_by_type_and_value_and_exactly_as_often_as_said() -> None:
    marker, other = uuid.UUID(int=7), uuid.UUID(int=8)
    query = Dossier.objects.filter(pk=marker, code=str(marker)).values_list("id").query
    compiler = query.get_compiler(using="default")
    # The key and its text are two parameters; only the UUID is the key's.
    compiled = CompiledSelect.of(compiler, {"key": (marker, 1)})
    assert compiled is not None
    assert compiled.bind({"key": other}) == [str(marker), other]
    assert CompiledSelect.of(compiler, {"key": (marker, 2)}) is None
    twice = Dossier.objects.filter(pk=marker, applicant_id=marker).values_list("id").query
    assert CompiledSelect.of(twice.get_compiler(using="default"), {"key": (marker, 1)}) is None
    compiled = CompiledSelect.of(twice.get_compiler(using="default"), {"key": (marker, 2)})
    assert compiled is not None
    assert compiled.bind({"key": other}) == [other, other]


@pytest.mark.django_db
def test_a_read_by_an_integer_key_beside_a_true_parameter_is_compiled(
    django_assert_num_queries: Any,
) -> None:
    # True == 1 in Python: the key's marker (1) was found twice, and every read of
    # this shape went through the ORM.
    reader = JoinedRead(DossierEvent, ("seq", "dossier"), annotations={"flag": Value(True)})
    dossier = make_dossier(make_user(), make_procedure())
    event = an_event(dossier, 1)
    event.save()
    assert reader._compiled_for("default") is not None
    with django_assert_num_queries(1):
        read = reader.get(pk=event.pk)
    assert (read.pk, read.seq, read.dossier_id, read.flag) == (
        event.pk,
        event.seq,
        dossier.pk,
        True,
    )  # type: ignore[attr-defined]
