"""Citizen ID conflicts have one record, `CitizenIdConflict`, whichever way the number
was claimed: entered in the app (`accounts.set_identity`) or asserted by a national
identity (`national_sign_in`). The app's "as entered" number, support's look-up and
the admin's pages read it, so what one shows the others show too.

Before, a number entered in the app was kept on the account (`citizen_id_conflict`):
support's look-up and the user pages saw only those, the conflicts' pages only the
national ones, and the column stayed set after the account got the number.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from auth.models import CitizenIdConflict, User
from fakes.identity_provider import FakeIdentityProvider, default_person
from tests.accounts.conftest import last_code
from tests.accounts.national import LINK_VERIFY, national_callback
from tests.accounts.staff import client_for, make_staff
from tests.accounts.test_support_admin import admin_client
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

PERSON = default_person()  # the national identity asserts PERSON["citizen_id"]
BORN = PERSON["birthdate"]
IDENTITY = "/api/v1/auth/me/identity"
OTHER = "001190054321"  # another number consistent with the same birth date
THIRD = "001190067890"
DECLARED = CitizenIdConflict.Source.DECLARED
NATIONAL = CitizenIdConflict.Source.NATIONAL


def api_of(user: User) -> ApiClient:
    return ApiClient(token=sign_in(user)[1].access_token)


def enter(user_api: ApiClient, number: str) -> None:
    response = user_api.patch(IDENTITY, {"citizen_id": number, "birth_date": BORN})
    assert response.status_code == 200, response


def support_sees_a_conflict(user: User) -> bool:
    found = client_for(make_staff()).post("/api/v1/support/lookup", {"phone": user.phone})
    assert found.status_code == 200, found
    conflict: bool = found.json()["citizen_id_conflict"]
    return conflict


def listed_in_conflict() -> set[Any]:
    root = Client()
    root.force_login(make_user(is_staff=True, is_superuser=True, full_name="Quản Trị"))
    listing = root.get(reverse("admin:accounts_user_changelist"), {"citizen_id_conflict": "yes"})
    assert listing.status_code == 200
    return {row.pk for row in listing.context["cl"].result_list}


def link_national_identity(api: ApiClient, account: User) -> None:
    """The identity (PERSON) links to `account`, which proves control of its phone."""
    link = national_callback(api).json()["link"]
    linked = api.post(
        LINK_VERIFY,
        {"flow_id": link["flow_id"], "method": "sms_otp", "code": last_code(account.phone)},
    )
    assert linked.status_code == 200, linked


def conflicts() -> list[tuple[str, Any, Any, str, bool]]:
    return [
        (c.citizen_id, c.verified_user_id, c.declared_by_id, c.source, c.resolved_at is None)
        for c in CitizenIdConflict.objects.order_by("created_at", "pk")
    ]


# --- Entered in the app ------------------------------------------------------------------


def test_a_number_entered_in_the_app_and_held_elsewhere_is_a_conflict_row() -> None:
    holder = make_user(citizen_id=OTHER)
    citizen = make_user()
    citizen_api = api_of(citizen)

    enter(citizen_api, OTHER)

    assert conflicts() == [(OTHER, citizen.pk, holder.pk, DECLARED, True)]
    assert citizen_api.get("/api/v1/auth/me").json()["citizen_id"] == "•••••••••321"
    assert support_sees_a_conflict(citizen)
    assert listed_in_conflict() == {citizen.pk}


def test_entering_another_number_withdraws_the_earlier_claim() -> None:
    first, second = make_user(citizen_id=OTHER), make_user(citizen_id=THIRD)
    citizen = make_user()
    citizen_api = api_of(citizen)

    enter(citizen_api, OTHER)
    enter(citizen_api, THIRD)

    assert conflicts() == [
        (OTHER, citizen.pk, first.pk, DECLARED, False),
        (THIRD, citizen.pk, second.pk, DECLARED, True),
    ]
    assert citizen_api.get("/api/v1/auth/me").json()["citizen_id"] == "•••••••••890"


def test_the_holder_correcting_its_number_leaves_the_entered_claim_open() -> None:
    """The number is not the claimant's until it is recorded: support still sees the
    claim, and the app still shows the number as entered."""
    holder = make_user(citizen_id=OTHER)
    citizen = make_user()
    citizen_api = api_of(citizen)
    enter(citizen_api, OTHER)

    enter(api_of(holder), THIRD)

    assert conflicts() == [(OTHER, citizen.pk, holder.pk, DECLARED, True)]
    assert support_sees_a_conflict(citizen)
    assert citizen_api.get("/api/v1/auth/me").json()["citizen_id"] == "•••••••••321"
    # Entered again once free: the account holds it, and the claim is settled.
    enter(citizen_api, OTHER)
    citizen.refresh_from_db()
    assert citizen.citizen_id == OTHER
    assert conflicts() == [(OTHER, citizen.pk, holder.pk, DECLARED, False)]
    assert not support_sees_a_conflict(citizen)


# --- Entered in the app, then asserted by the national identity ---------------------------


def test_the_national_identity_giving_the_entered_number_settles_the_claim(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    holder = make_user(citizen_id=PERSON["citizen_id"])
    citizen = make_user(PERSON["phone_number"])
    enter(api_of(citizen), PERSON["citizen_id"])
    enter(api_of(holder), OTHER)  # the holder corrects its number: it is free

    link_national_identity(api, citizen)

    citizen.refresh_from_db()
    assert citizen.citizen_id == PERSON["citizen_id"]
    assert citizen.citizen_id_verified_at is not None
    assert conflicts() == [(PERSON["citizen_id"], citizen.pk, holder.pk, DECLARED, False)]
    assert not support_sees_a_conflict(citizen)
    assert listed_in_conflict() == set()


def test_the_national_identity_asserting_another_number_withdraws_the_entered_claim(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    holder = make_user(citizen_id=OTHER)
    citizen = make_user(PERSON["phone_number"])
    enter(api_of(citizen), OTHER)

    link_national_identity(api, citizen)

    citizen.refresh_from_db()
    assert citizen.citizen_id == PERSON["citizen_id"]
    assert conflicts() == [(OTHER, citizen.pk, holder.pk, DECLARED, False)]
    assert not support_sees_a_conflict(citizen)


def test_an_entered_claim_the_national_identity_asserts_becomes_the_identitys(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    holder = make_user(citizen_id=PERSON["citizen_id"])
    citizen = make_user(PERSON["phone_number"])
    enter(api_of(citizen), PERSON["citizen_id"])

    link_national_identity(api, citizen)

    assert conflicts() == [(PERSON["citizen_id"], citizen.pk, holder.pk, NATIONAL, True)]
    assert support_sees_a_conflict(citizen)


# --- Asserted by the national identity ----------------------------------------------------


def test_support_and_the_user_pages_see_a_conflict_the_national_identity_asserted(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    holder = make_user("+84922222222", citizen_id=PERSON["citizen_id"])

    assert national_callback(api).status_code == 200

    created = User.objects.get(phone=PERSON["phone_number"])
    assert conflicts() == [(PERSON["citizen_id"], created.pk, holder.pk, NATIONAL, True)]
    assert support_sees_a_conflict(created)
    assert not support_sees_a_conflict(holder)  # it holds the number; it claims none
    assert listed_in_conflict() == {created.pk}
    # Settled once the holder corrects its number: support sees it go.
    enter(api_of(holder), OTHER)
    assert not support_sees_a_conflict(created)


def test_the_user_page_shows_both_sides_of_a_conflict() -> None:
    holder = make_user(citizen_id=OTHER)
    citizen = make_user()
    enter(api_of(citizen), OTHER)
    conflict = CitizenIdConflict.objects.get()
    root = make_staff(is_superuser=True)
    page = reverse("admin:accounts_citizenidconflict_change", args=[conflict.pk])

    support = admin_client(make_staff())
    claimant = support.get(reverse("admin:accounts_user_change", args=[citizen.pk]))
    held = support.get(reverse("admin:accounts_user_change", args=[holder.pk]))
    whole = admin_client(root).get(reverse("admin:accounts_user_change", args=[citizen.pk]))

    for response in (claimant, held, whole):
        assert response.status_code == 200
        assert page in response.content.decode()
    assert "•••••••••321" in claimant.content.decode()
    assert OTHER not in claimant.content.decode()
    assert OTHER not in held.content.decode()
    assert OTHER in whole.content.decode()
