"""One rule tells a whole phone number from a citizen ID (`auth.personal_numbers`): a
superuser's search and the job pages' look-ups both read a text by it."""

from __future__ import annotations

import pytest

from auth.models import User
from auth.personal_numbers import PersonalNumber, whole_personal_number
from tests.conftest import make_user

PHONE = PersonalNumber("phone", "+84912345678")
CCCD = PersonalNumber("citizen_id", "001099012345")


@pytest.mark.parametrize(
    "text",
    [
        "0912345678",
        "+84912345678",
        "84912345678",
        "0084912345678",
        "+84 912-345-678",
        "(+84) 912.345.678",
        " 0912 345 678 ",
        "0912345678\n",
        "912345678",  # the national number without its 0 (`parse_phone`'s rule)
    ],
)
def test_a_mobile_number_written_as_people_write_it_is_a_phone(text: str) -> None:
    assert whole_personal_number(text) == PHONE


@pytest.mark.parametrize("text", ["001099012345", "  001099012345  ", "001099012345\n"])
def test_twelve_digits_are_a_citizen_id_spaces_around_them_aside(text: str) -> None:
    assert whole_personal_number(text) == CCCD


def test_twelve_digits_that_hold_a_phone_number_are_a_citizen_id() -> None:
    # 084 is Trà Vinh's code; the rest reads like 84912345678, a mobile number.
    assert whole_personal_number("084912345678") == PersonalNumber("citizen_id", "084912345678")


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("+8491", "the start of a number"),
        ("091234567", "a mobile number short of a digit"),
        ("12345678", "the end of a number"),
        ("00109901234", "a citizen ID short of a digit"),
        ("0010990123456", "a citizen ID and a digit more"),
        ("001 099 012 345", "a citizen ID written in groups"),
        ("0010 9901 2345", "a citizen ID written in other groups"),
        ("012345678", "nine digits: no old identity card (CMND) is held by accounts"),
        ("００１０９９０１２３４５", "full-width digits, which no account holds"),
        ("CCCD 001099012345", "a citizen ID with a word"),
        ("SĐT 0912345678", "a phone number with a word"),
        ("02438123456", "a landline"),
        ("+14155550123", "a foreign number"),
        ("", "nothing"),
        ("Nguyễn Văn An", "a name"),
    ],
)
def test_anything_else_is_no_whole_number(text: str, what: str) -> None:
    assert whole_personal_number(text) is None, what


@pytest.mark.parametrize("value", [84912345678, 1099012345, None, ["0912345678"]])
def test_a_value_that_is_not_text_is_no_number(value: object) -> None:
    assert whole_personal_number(value) is None


@pytest.mark.django_db
def test_a_number_finds_the_account_that_holds_it_in_its_own_field() -> None:
    by_phone = make_user(phone="+84912345678", citizen_id="079201000123")
    by_citizen_id = make_user(phone="+84987654321", citizen_id="001099012345")

    assert list(User.objects.filter(PHONE.held_by())) == [by_phone]
    assert list(User.objects.filter(CCCD.held_by())) == [by_citizen_id]
