"""Server-side validation of the declarative procedure forms."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from dossiers.form_spec import (
    check_draft_values,
    check_spec,
    is_structurally_valid_citizen_id,
    localised_spec,
    validate_form,
)
from tests.dossiers.conftest import RICH_FORM, VALID_FORM


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    _, errors = validate_form(RICH_FORM, data)
    return {error["field"]: error["code"] for error in errors}


def with_value(name: str, value: Any) -> dict[str, Any]:
    return {**VALID_FORM, name: value}


def test_valid_form_is_normalised() -> None:
    cleaned, errors = validate_form(RICH_FORM, {**VALID_FORM, "commune": "4", "email": " a@b.vn "})
    assert errors == []
    assert cleaned == {
        "full_name": "Lê Thị Hoa",
        "birth_date": "1990-05-17",
        "phone": "+84912345678",
        "citizen_id": "001190012345",
        "copies": 2,
        "purpose": "work",
        "email": "a@b.vn",
        "commune": "00004",
        "pledge": True,
    }


def test_missing_required_fields_are_listed_each_with_its_code() -> None:
    _, errors = validate_form(RICH_FORM, {"copies": 1})
    assert errors == [
        {
            "field": "form.full_name",
            "location": "body",
            "code": "required",
            "message": "Trường này là bắt buộc.",
        },
        {
            "field": "form.birth_date",
            "location": "body",
            "code": "required",
            "message": "Trường này là bắt buộc.",
        },
        {
            "field": "form.phone",
            "location": "body",
            "code": "required",
            "message": "Trường này là bắt buộc.",
        },
        {
            "field": "form.citizen_id",
            "location": "body",
            "code": "required",
            "message": "Trường này là bắt buộc.",
        },
        {
            "field": "form.purpose",
            "location": "body",
            "code": "required",
            "message": "Trường này là bắt buộc.",
        },
        {
            "field": "form.pledge",
            "location": "body",
            "code": "required",
            "message": "Trường này là bắt buộc.",
        },
    ]


def test_blank_text_counts_as_missing() -> None:
    assert errors_of(with_value("full_name", "   ")) == {"form.full_name": "required"}


def test_optional_fields_may_be_left_out() -> None:
    data = {k: v for k, v in VALID_FORM.items() if k != "copies"}
    assert errors_of(data) == {}


def test_unknown_field_is_refused() -> None:
    assert errors_of(with_value("status", 10)) == {"form.status": "unknown_field"}


@pytest.mark.parametrize(("length", "expected"), [(20, {}), (21, {"form.full_name": "too_long"})])
def test_text_max_length_boundary(length: int, expected: dict[str, str]) -> None:
    assert errors_of(with_value("full_name", "a" * length)) == expected


def test_text_must_be_a_string() -> None:
    assert errors_of(with_value("full_name", 12)) == {"form.full_name": "invalid_type"}


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1, None),
        (10, None),
        ("3", None),
        (0, "below_min"),
        (11, "above_max"),
        (2.5, "not_whole_number"),
        ("two", "invalid_number"),
        (True, "invalid_number"),
        ("NaN", "invalid_number"),
    ],
)
def test_number_bounds_and_type(value: Any, code: str | None) -> None:
    assert errors_of(with_value("copies", value)) == ({"form.copies": code} if code else {})


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("999999999999999", None),  # 15 digits
        ("-999999999999999.5", None),
        ("1000000000000000", "number_too_large"),  # 16
        (10**15, "number_too_large"),
        ("1e15", "number_too_large"),
        ("1e5000", "number_too_large"),
        ("1e100000000", "number_too_large"),  # refused before it is ever built
        ("-1e4301", "number_too_large"),
        ("1e-5000", None),
        ("0", None),
    ],
)
def test_a_number_has_at_most_the_digits_the_setting_allows(value: Any, code: str | None) -> None:
    spec = [{"name": "capital", "type": "number", "label": "Capital"}]
    _, errors = validate_form(spec, {"capital": value})
    assert [error["code"] for error in errors] == ([code] if code else [])


def test_date_must_be_iso_and_not_after_today(monkeypatch: pytest.MonkeyPatch) -> None:
    today = timezone.localdate()
    monkeypatch.setattr("django.utils.timezone.localdate", lambda: today)  # midnight may pass
    assert errors_of(with_value("birth_date", today.isoformat())) == {}
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert errors_of(with_value("birth_date", tomorrow)) == {"form.birth_date": "date_too_late"}
    assert errors_of(with_value("birth_date", "17/05/1990")) == {"form.birth_date": "invalid_date"}
    assert errors_of(with_value("birth_date", "1990-02-30")) == {"form.birth_date": "invalid_date"}


def test_date_min_bound() -> None:
    spec = [{"name": "d", "type": "date", "label": "D", "min": "2026-01-01"}]
    assert validate_form(spec, {"d": "2026-01-01"})[1] == []
    assert [e["code"] for e in validate_form(spec, {"d": "2025-12-31"})[1]] == ["date_too_early"]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("0912345678", "+84912345678"),
        ("+84 912 345 678", "+84912345678"),
        ("84912345678", "+84912345678"),
        ("0387654321", "+84387654321"),
    ],
)
def test_phone_is_stored_as_e164(value: str, stored: str) -> None:
    cleaned, errors = validate_form(RICH_FORM, with_value("phone", value))
    assert errors == []
    assert cleaned["phone"] == stored


@pytest.mark.parametrize(
    "value",
    [
        "02438253536",
        "+14155550123",
        "0912",
        "abc",
        912345678,
        # Read past their letters or other characters, these were a mobile number.
        "SĐT 0912345678",
        "O912345678",
        "0912345678 ext 12",
        "\uff10\uff19\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width
    ],
)
def test_phone_must_be_a_vietnamese_mobile(value: Any) -> None:
    assert errors_of(with_value("phone", value)) == {"form.phone": "invalid_phone"}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("001190012345", True),  # Hà Nội, male born in 1990
        ("079305000001", True),  # Hồ Chí Minh City, female born in 2005
        ("096200000001", True),  # Cà Mau, male born in 2000
        ("003190012345", False),  # 003 is no province prefix
        ("00119001234", False),  # 11 digits
        ("0011900123456", False),  # 13 digits
        ("00119001234a", False),
        ("001299012345", False),  # born in 2099: in the future
        ("００１１９００１２３４５", False),  # full-width digits
    ],
)
def test_citizen_id_structure(value: str, valid: bool) -> None:
    assert is_structurally_valid_citizen_id(value) is valid
    expected = {} if valid else {"form.citizen_id": "invalid_citizen_id"}
    assert errors_of(with_value("citizen_id", value)) == expected


def test_citizen_id_spaces_are_removed() -> None:
    cleaned, _ = validate_form(RICH_FORM, with_value("citizen_id", "001 190 012 345"))
    assert cleaned["citizen_id"] == "001190012345"


def test_choice_must_be_an_allowed_value() -> None:
    assert errors_of(with_value("purpose", "travel")) == {"form.purpose": "invalid_choice"}


@pytest.mark.parametrize("value", ["not-an-email", "a@", 42])
def test_email_is_checked(value: Any) -> None:
    assert errors_of(with_value("email", value)) == {"form.email": "invalid_email"}


@pytest.mark.parametrize("value", ["99999", "abc", "000004", 4])
def test_address_must_be_a_2025_commune_code(value: Any) -> None:
    assert errors_of(with_value("commune", value)) == {"form.commune": "invalid_commune"}


def test_required_checkbox_must_be_ticked() -> None:
    assert errors_of(with_value("pledge", False)) == {"form.pledge": "must_be_checked"}
    assert errors_of(with_value("pledge", "yes")) == {"form.pledge": "invalid_type"}


def test_drafts_accept_partial_and_unchecked_values() -> None:
    assert check_draft_values(RICH_FORM, {"phone": "09", "copies": "many"}) == []


def test_drafts_refuse_unknown_names_and_nested_values() -> None:
    errors = check_draft_values(RICH_FORM, {"owner": "x", "full_name": {"a": 1}})
    assert [(e["field"], e["code"]) for e in errors] == [
        ("form.owner", "unknown_field"),
        ("form.full_name", "invalid_type"),
    ]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "a\x00b"])
def test_drafts_refuse_values_the_database_cannot_store(value: Any) -> None:
    errors = check_draft_values(RICH_FORM, {"full_name": value})
    assert [(e["field"], e["code"]) for e in errors] == [("form.full_name", "invalid_type")]


def test_draft_value_length_limit_boundary(settings) -> None:
    settings.DOSSIER_FORM_VALUE_MAX_CHARS = 30
    assert check_draft_values(RICH_FORM, {"full_name": "a" * 30}) == []
    errors = check_draft_values(RICH_FORM, {"full_name": "a" * 31})
    assert [e["code"] for e in errors] == ["too_long"]


def test_english_messages(settings) -> None:
    from django.utils import translation

    with translation.override("en"):
        _, errors = validate_form(RICH_FORM, with_value("copies", 11))
    assert errors == [
        {
            "field": "form.copies",
            "location": "body",
            "code": "above_max",
            "message": "Must be at most 10.",
        }
    ]


def test_check_spec_accepts_the_rich_form() -> None:
    assert check_spec(RICH_FORM) == []


def test_check_spec_reports_problems() -> None:
    spec = [
        {"name": "Bad Name", "type": "text", "label": "x"},
        {"name": "a", "type": "colour", "label": "x", "colour": "red"},
        {"name": "a", "type": "choice", "label": ""},
        {"name": "d", "type": "date", "label": "x", "max": "tomorrow"},
    ]
    assert check_spec(spec) == [
        "field 1: name must be snake_case ascii",
        "a: type must be one of text, number, date, choice, phone, citizen_id, email, "
        "address, checkbox",
        "a: unknown keys colour",
        "field 3: duplicate name a",
        "field 3: a Vietnamese label is required",
        "field 3: a choice field needs choices",
        "d: max must be an ISO date or 'today'",
    ]
    assert check_spec({"name": "x"}) == ["the form spec must be a list of fields"]


def test_localised_spec_picks_the_language() -> None:
    english = localised_spec(RICH_FORM, english=True)
    assert english[5] == {
        "name": "purpose",
        "type": "choice",
        "label": "Purpose",
        "help": "",
        "required": True,
        "choices": [{"value": "work", "label": "Job"}, {"value": "study", "label": "Study abroad"}],
    }
    assert localised_spec(RICH_FORM, english=False)[0]["label"] == "Họ và tên"
