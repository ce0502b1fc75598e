from typing import Any

import pytest

from auth.models import DeviceSession, Invitation, OtpChallenge, User
from auth.phone import mask_phone, normalise_phone
from backend.errors import Unprocessable
from tests.accounts.conftest import PASSWORD, device
from tests.accounts.staff import client_for
from tests.conftest import ApiClient, make_user
from tests.factories import make_organisation


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "+84912345678",
        "84912345678",
        "0084912345678",
        "091 234 5678",
        "091-234-5678",
        # What Vietnamese users write: groups of digits with spaces, dots, hyphens, the
        # country code in parentheses, a non-breaking space pasted from a page.
        "0912 345 678",
        "0912.345.678",
        "+84 912-345-678",
        "(+84) 912.345.678",
        "(+84)912345678",
        "+84 (0) 912 345 678",
        "(091) 234-5678",
        "0084 912 345 678",
        "0912\u00a0345\u00a0678",
        " 0912345678 ",
    ],
)
def test_vietnamese_mobile_forms_normalise_to_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+84912345678"


# Each of these was read as a Vietnamese mobile number: the `phonenumbers` library skips
# text before the digits, reads letters as keypad digits and cuts off extensions.
WITH_OTHER_CHARACTERS = [
    "T317-261207",  # a dossier code's agency and day: +84 317 261 207
    "T0912345678",
    "O912345678",  # the letter O for a zero
    "SĐT 0912345678",
    "SĐT: 0912 345 678",
    "0912 345 678 O",
    "tel:+84912345678",
    "0912345678 ext 12",
    "0912345678x12",
    "0912345678#12",
    "0912345678;ext=1",
    "*0912345678",
    "++84912345678",
    "0912/345/678",
    "0912\u2013345\u2013678",  # en dashes
    "0912345678\u200b",  # a zero-width space
    "\uff10\uff19\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width digits
    "09\uff112345678",  # one full-width digit
    "\u0660\u0669\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
]


@pytest.mark.parametrize("raw", WITH_OTHER_CHARACTERS)
def test_text_with_other_characters_than_a_written_number_is_an_invalid_phone(raw: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        normalise_phone(raw, field="new_phone")
    assert caught.value.details[0]["field"] == "new_phone"
    assert caught.value.details[0]["code"] == "invalid_phone"


def _route(name: str, me: User, written: str) -> tuple[ApiClient, str, dict[str, Any], str]:
    """(client, path, body, field) of a route of the app that takes a phone number."""
    if name == "register":
        body = {"phone": written, "full_name": "Lan", "password": PASSWORD}
        return ApiClient(), "/api/v1/auth/register", body, "phone"
    if name == "login":
        body = {"phone": written, "password": PASSWORD, **device()}
        return ApiClient(), "/api/v1/auth/login", body, "phone"
    if name == "password reset":
        return ApiClient(), "/api/v1/auth/password/reset", {"phone": written}, "phone"
    if name == "phone change":
        body = {"new_phone": written, "password": PASSWORD}
        return client_for(me), "/api/v1/auth/phone/change", body, "new_phone"
    organisation = make_organisation(me)
    path = f"/api/v1/organisations/{organisation.id}/invitations"
    return client_for(me), path, {"phone": written}, "phone"


@pytest.mark.parametrize("written", ["SĐT 0912 345 678", "O912345678"])
@pytest.mark.parametrize(
    "route", ["register", "login", "password reset", "phone change", "invitation"]
)
def test_every_route_refuses_a_phone_written_with_letters(db, route: str, written: str) -> None:
    # The account of +84912345678: read past its letters, the text was that number.
    make_user("+84912345678")
    me = make_user("+84987000111")
    client, path, body, field = _route(route, me, written)
    users, sessions = User.objects.count(), DeviceSession.objects.count()

    response = client.post(path, body)

    assert response.status_code == 422
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [
        (field, "invalid_phone")
    ]
    # Nothing was done with the number: no account, code, session or invitation.
    assert (User.objects.count(), DeviceSession.objects.count()) == (users, sessions)
    assert not OtpChallenge.objects.exists()
    assert not Invitation.objects.exists()


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
