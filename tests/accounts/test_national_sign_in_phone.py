"""Which account a national identity's phone number leads to, if any.

An identity new to us finds an existing account by its number (which must then
prove control before the link) or makes one with it. Only a number the provider
says it verified counts (`phone_number_verified` true), and a disabled account is
answered as a linked one is (403 `account_disabled`): nothing is texted, linked or
made.
"""

from __future__ import annotations

from typing import Any

import pytest

from auth.models import DeviceSession, NationalIdentity, NationalSignIn, OtpChallenge, User
from fakes.identity_provider import FakeIdentityProvider, default_person
from tests.accounts.conftest import last_code, sms_to
from tests.accounts.national import LINK_VERIFY, national_callback
from tests.conftest import ApiClient, make_user

pytestmark = pytest.mark.django_db

PERSON = default_person()
# What a provider that did not verify the number sends: false, nothing (the claim is
# optional), or something that is not JSON's true.
UNVERIFIED = pytest.mark.parametrize(
    "verified", [False, None, "true"], ids=["false", "absent", "a_string"]
)


def nothing_linked_or_signed_in() -> None:
    assert not NationalIdentity.objects.exists()
    assert not DeviceSession.objects.exists()
    assert not NationalSignIn.objects.exclude(link_user=None).exists()


def assert_no_phone(response: Any) -> None:
    assert response.status_code == 422, response
    assert response.json()["code"] == "national_id_no_phone"


@UNVERIFIED
def test_an_unverified_number_does_not_lead_to_the_account_holding_it(
    idp: FakeIdentityProvider, api: ApiClient, verified: Any
) -> None:
    owner = make_user(PERSON["phone_number"])
    idp.set_person(phone_number_verified=verified)

    response = national_callback(api)

    assert_no_phone(response)
    nothing_linked_or_signed_in()
    assert sms_to(owner.phone) == []
    assert not OtpChallenge.objects.exists()
    assert list(User.objects.all()) == [owner]


@UNVERIFIED
def test_an_unverified_number_makes_no_account(
    idp: FakeIdentityProvider, api: ApiClient, verified: Any
) -> None:
    idp.set_person(phone_number_verified=verified)

    response = national_callback(api)

    assert_no_phone(response)
    nothing_linked_or_signed_in()
    assert not User.objects.exists()


def test_the_disabled_account_of_the_number_is_answered_as_a_linked_one(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    owner = make_user(PERSON["phone_number"], is_active=False)

    response = national_callback(api)

    assert response.status_code == 403, response
    assert response.json()["code"] == "account_disabled"
    nothing_linked_or_signed_in()
    assert sms_to(owner.phone) == []
    assert not OtpChallenge.objects.exists()
    assert list(User.objects.all()) == [owner]
    # The same answer as an identity already linked to a disabled account.
    NationalIdentity.objects.create(
        user=owner, issuer=idp.issuer, subject=PERSON["sub"], level=2, full_name=PERSON["name"]
    )
    linked = national_callback(api)
    assert (linked.status_code, linked.json()) == (response.status_code, response.json())


def test_an_account_disabled_after_the_callback_is_not_linked(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    owner = make_user(PERSON["phone_number"])
    link = national_callback(api).json()["link"]
    code = last_code(owner.phone)
    User.objects.filter(pk=owner.pk).update(is_active=False)

    response = api.post(
        LINK_VERIFY, {"flow_id": link["flow_id"], "method": "sms_otp", "code": code}
    )

    assert response.status_code == 403, response
    assert response.json()["code"] == "account_disabled"
    assert not NationalIdentity.objects.exists()
    assert not DeviceSession.objects.exists()
