"""JoinedRead builds the same instances as select_related + only, from one query."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import F, Value

from auth.models import User
from backend.joined_read import JoinedRead
from dossiers.models import Dossier
from tests.conftest import make_user
from tests.factories import make_dossier, make_organisation, make_procedure

pytestmark = pytest.mark.django_db

READ = JoinedRead(
    Dossier,
    ("code", "status", "applicant", "organisation"),
    related={"applicant": ("full_name",), "organisation": None},
    annotations={"applicant_phone": F("applicant__phone"), "answer": Value(42)},
)


def test_loads_the_fields_the_related_rows_and_the_annotations_in_one_query(
    django_assert_num_queries: Any,
) -> None:
    owner = make_user(full_name="Phạm Thu Hà")
    organisation = make_organisation(owner)
    dossier = make_dossier(owner, make_procedure(), organisation=organisation, code="X-1")
    with django_assert_num_queries(1):
        read = READ.get(pk=dossier.pk)
        assert (read.pk, read.code, read.status) == (dossier.pk, "X-1", dossier.status)
        assert (read.applicant.pk, read.applicant.full_name) == (owner.pk, "Phạm Thu Hà")
        assert read.organisation is not None
        assert read.organisation.tax_code == organisation.tax_code  # every field asked
        assert read.applicant_phone == owner.phone  # type: ignore[attr-defined]
        assert read.answer == 42  # type: ignore[attr-defined]
    assert read._state.adding is False
    assert read._state.db == "default"


def test_fields_not_asked_for_are_deferred_like_only() -> None:
    dossier = make_dossier(make_user(), make_procedure(), form_data={"a": "b"})
    read = READ.get(pk=dossier.pk)
    assert read.get_deferred_fields() >= {"form_data", "procedure_id", "version"}
    assert read.form_data == {"a": "b"}  # read on first access
    assert isinstance(read.applicant, User)
    assert "phone" in read.applicant.get_deferred_fields()


def test_a_null_foreign_key_gives_none_and_a_missing_row_does_not_exist() -> None:
    dossier = make_dossier(make_user(), make_procedure())
    assert READ.get(pk=dossier.pk).organisation is None
    with pytest.raises(Dossier.DoesNotExist):
        READ.get(pk="00000000-0000-0000-0000-000000000000")


def test_refuses_a_related_row_without_its_foreign_key_column() -> None:
    with pytest.raises(ValueError, match="applicant_id must be among the fields"):
        JoinedRead(Dossier, ("code",), related={"applicant": None})
