"""Tax codes (MST): 10 digits with a check digit, or 13 for a branch."""

from __future__ import annotations

import pytest

from auth.models import Membership, Organisation
from auth.tax_codes import format_tax_code, normalise_tax_code
from tests.accounts.staff import client_for
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0100233583", "0100233583"),
        ("0100233583-001", "0100233583001"),
        ("0100233583001", "0100233583001"),
        (" 0100233583 001 ", "0100233583001"),
    ],
)
def test_valid_tax_codes_are_normalised_to_digits(raw: str, expected: str) -> None:
    assert normalise_tax_code(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "0100233584",  # bad check digit
        "0100233580-001",  # branch of a parent with a bad check digit
        "010023358",  # 9 digits
        "01002335830",  # 11 digits
        "0100233583-01",  # 12 digits
        "01002335A3",
        "",
    ],
)
def test_invalid_tax_codes_are_refused(raw: str) -> None:
    assert normalise_tax_code(raw) is None


def test_display_form_of_a_branch_has_a_dash() -> None:
    assert format_tax_code("0100233583001") == "0100233583-001"
    assert format_tax_code("0100233583") == "0100233583"


def test_create_organisation_with_a_branch_code_stores_digits_and_makes_creator_owner() -> None:
    user = make_user()
    response = client_for(user).post(
        "/api/v1/organisations",
        {"tax_code": "0100233583-001", "name": "  Chi nhánh Hà Nội ", "address": "1 Tràng Tiền"},
    )
    assert response.status_code == 201, response
    body = response.json()
    assert body["tax_code"] == "0100233583001"
    assert body["tax_code_display"] == "0100233583-001"
    assert body["name"] == "Chi nhánh Hà Nội"
    assert body["address"] == "1 Tràng Tiền"
    assert body["my_role"] == "owner"
    assert body["watching"] is True
    membership = Membership.objects.get(organisation_id=body["id"])
    assert (membership.user_id, membership.role, membership.watches) == (user.id, "owner", True)


def test_create_organisation_with_a_bad_check_digit_is_a_field_error() -> None:
    response = client_for(make_user()).post(
        "/api/v1/organisations", {"tax_code": "0100233584", "name": "Công ty Sai Số"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_tax_code"
    assert body["details"][0]["field"] == "tax_code"
    assert Organisation.objects.count() == 0
    assert Membership.objects.count() == 0


def test_a_tax_code_is_registered_once() -> None:
    first = client_for(make_user()).post(
        "/api/v1/organisations", {"tax_code": "0100233583", "name": "Công ty A"}
    )
    assert first.status_code == 201
    second = client_for(make_user()).post(
        "/api/v1/organisations", {"tax_code": "0100233583", "name": "Công ty B"}
    )
    assert second.status_code == 409
    assert second.json()["code"] == "tax_code_taken"
    assert list(Organisation.objects.values_list("name", flat=True)) == ["Công ty A"]
    assert Membership.objects.count() == 1
