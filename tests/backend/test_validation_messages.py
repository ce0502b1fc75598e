"""Field errors are in the request's language whatever pydantic's error type, and
every detail has the documented shape (field, location, code, message)."""

from __future__ import annotations

import pytest
from django.utils import translation

from backend.api import _validation_message
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_procedure

pytestmark = pytest.mark.django_db


def client(language: str) -> ApiClient:
    return ApiClient(token=sign_in(make_user())[1].access_token, language=language)


@pytest.mark.parametrize(
    ("language", "message"),
    [("vi", "Không đúng định dạng."), ("en", "Not in the expected format.")],
)
def test_a_pattern_mismatch_is_explained_in_the_requests_language(language, message) -> None:
    response = client(language).patch("/api/v1/notifications/preferences", {"quiet_start": "25:00"})
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": "quiet_start",
            "location": "body",
            "code": "string_pattern_mismatch",
            "message": message,
        }
    ]


def test_a_fraction_and_a_list_get_vietnamese_messages() -> None:
    procedure = make_procedure()
    response = client("vi").post(
        "/api/v1/dossiers", {"procedure_id": procedure.pk + 0.5, "form": []}
    )
    assert response.status_code == 422
    by_field = {detail["field"]: detail for detail in response.json()["details"]}
    assert by_field["procedure_id"]["code"] == "int_type"  # a JSON integer only
    assert by_field["procedure_id"]["message"] == "Phải là số nguyên."
    assert by_field["form"]["code"] == "dict_type"
    assert by_field["form"]["message"] == "Phải là một đối tượng JSON."


@pytest.mark.parametrize(
    ("language", "text"), [("vi", "Giá trị này không hợp lệ."), ("en", "This value is not valid.")]
)
def test_an_error_type_not_mapped_gets_a_translated_generic_text(language, text) -> None:
    error = {"type": "url_parsing", "msg": "Input should be a valid URL", "ctx": {}}
    with translation.override(language):
        assert _validation_message(error) == text


def test_the_projects_own_validators_keep_their_text() -> None:
    error = {
        "type": "value_error",
        "msg": "Value error, x",
        "ctx": {"error": "Use the format YYYY-MM-DD."},
    }
    assert _validation_message(error) == "Use the format YYYY-MM-DD."
