"""Address fields that accept an old address (before July 2025): the form stores the
2025 commune code and keeps the text as written; a split ward is never decided."""

from __future__ import annotations

from typing import Any

import pytest

from dossiers.form_spec import check_draft_values, check_spec, localised_spec, validate_form
from dossiers.models import Dossier, Procedure
from tests.dossiers.conftest import RICH_FORM, VALID_FORM, attach, client_for
from tests.factories import make_agency, make_dossier, make_procedure

OLD_FORM: list[dict[str, Any]] = [
    {**field, "old_address": True} if field["name"] == "commune" else field for field in RICH_FORM
]
SPLIT = "45 Ba Tháng Hai, Phường 14, Quận 10, TP HCM"  # Diên Hồng or Hòa Hưng


def validate(**values: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return validate_form(OLD_FORM, {**VALID_FORM, **values})


def test_the_spec_marks_the_field_and_the_app_sees_the_mark() -> None:
    assert check_spec(OLD_FORM) == []
    field = next(f for f in localised_spec(OLD_FORM, english=False) if f["name"] == "commune")
    assert field["old_address"] is True


def test_old_address_only_on_address_fields_and_as_a_boolean() -> None:
    spec = [
        {"name": "a", "type": "text", "label": "A", "old_address": True},
        {"name": "b", "type": "address", "label": "B", "old_address": "yes"},
    ]
    assert check_spec(spec) == [
        "a: old_address is true or false, on an address field",
        "b: old_address is true or false, on an address field",
    ]


def test_the_companion_name_is_reserved() -> None:
    spec = [
        {"name": "home", "type": "address", "label": "Nơi ở", "old_address": True},
        {"name": "home_as_written", "type": "text", "label": "Khác"},
    ]
    assert check_spec(spec) == [
        "home_as_written: this name is kept for the text of the old address"
    ]


def test_old_text_is_stored_as_the_new_commune_with_the_text() -> None:
    cleaned, errors = validate(commune="Phuong Ben Nghe, Quan 1, TP HCM")
    assert errors == []
    assert cleaned["commune"] == "26740"
    assert cleaned["commune_as_written"] == "Phuong Ben Nghe, Quan 1, TP HCM"


def test_a_split_ward_is_an_error_listing_the_candidates() -> None:
    cleaned, errors = validate(commune=SPLIT)
    assert "commune" not in cleaned
    (error,) = errors
    assert (error["field"], error["code"]) == ("form.commune", "address_needs_choice")
    codes = [c["commune"]["code"] for c in error["conversion"]["candidates"]]
    assert codes == ["27169", "27163"]


def test_the_chosen_candidate_is_stored_with_the_text() -> None:
    cleaned, errors = validate(commune="27163", commune_as_written=SPLIT)
    assert errors == []
    assert (cleaned["commune"], cleaned["commune_as_written"]) == ("27163", SPLIT)


def test_a_choice_outside_the_candidates_is_refused() -> None:
    _, errors = validate(commune="00070", commune_as_written=SPLIT)
    assert [(e["field"], e["code"]) for e in errors] == [
        ("form.commune", "commune_not_a_candidate")
    ]


def test_unknown_old_ward_suggests_names() -> None:
    _, errors = validate(commune="Phường Bến Ngé, Quận 1, TP HCM")
    (error,) = errors
    assert error["code"] == "unknown_old_ward"
    assert error["suggestions"][0] == "Phường Bến Nghé"


def test_without_the_mark_text_is_still_refused() -> None:
    _, errors = validate_form(
        RICH_FORM, {**VALID_FORM, "commune": "Phuong Ben Nghe, Quan 1, TP HCM"}
    )
    assert [(e["field"], e["code"]) for e in errors] == [("form.commune", "invalid_commune")]
    assert check_draft_values(RICH_FORM, {"commune_as_written": "x"})[0]["code"] == "unknown_field"
    assert check_draft_values(OLD_FORM, {"commune_as_written": "x"}) == []


@pytest.mark.django_db
def test_a_dossier_submitted_with_an_old_address_keeps_both() -> None:
    procedure: Procedure = make_procedure(make_agency("HN-OLD"), documents=1, form_spec=OLD_FORM)
    dossier = make_dossier(procedure=procedure, form_data=VALID_FORM)
    attach(dossier, "doc-1", 1)
    client = client_for(dossier.applicant)
    draft = client.patch(f"/api/v1/dossiers/{dossier.id}", {"form": {"commune": SPLIT}})
    assert draft.status_code == 200, draft.json()
    refused = client.post(f"/api/v1/dossiers/{dossier.id}/submit")
    assert refused.status_code == 422
    details = [d for d in refused.json()["details"] if d.get("field") == "form.commune"]
    assert [d["code"] for d in details] == ["address_needs_choice"]
    assert len(details[0]["conversion"]["candidates"]) == 2
    dossier.refresh_from_db()
    assert dossier.status == Dossier.Status.DRAFT
    chosen = {"commune": "27169", "commune_as_written": SPLIT}
    assert client.patch(f"/api/v1/dossiers/{dossier.id}", {"form": chosen}).status_code == 200
    response = client.post(f"/api/v1/dossiers/{dossier.id}/submit")
    assert response.status_code == 200, response.json()
    dossier.refresh_from_db()
    assert (dossier.form_data["commune"], dossier.form_data["commune_as_written"]) == (
        "27169",
        SPLIT,
    )
