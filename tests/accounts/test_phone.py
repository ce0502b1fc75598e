import pytest

from auth.phone import mask_phone, normalise_phone
from backend.errors import Unprocessable


@pytest.mark.parametrize(
    "raw", ["0912345678", "+84912345678", "84912345678", "091 234 5678", "091-234-5678"]
)
def test_vietnamese_mobile_forms_normalise_to_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+84912345678"


@pytest.mark.parametrize(
    "raw",
    [
        "02438253456",  # Hà Nội landline
        "+12025550123",  # United States
        "+8613800138000",  # China mobile
        "091234567",  # one digit short
        "09123456789",  # one digit long
        "hello",
        "",
    ],
)
def test_anything_else_is_an_invalid_phone_field_error(raw: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        normalise_phone(raw)
    assert caught.value.details[0]["field"] == "phone"
    assert caught.value.details[0]["code"] == "invalid_phone"


def test_register_with_a_landline_answers_422_invalid_phone(api, db) -> None:
    response = api.post(
        "/api/v1/auth/register",
        {"phone": "02438253456", "full_name": "Lan", "password": "Str0ng-pass!word"},
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "phone"
    assert response.json()["details"][0]["code"] == "invalid_phone"


def test_masked_keeps_only_the_prefix_and_the_last_two_digits() -> None:
    assert mask_phone("+84912345678") == "+8491•••5678"
