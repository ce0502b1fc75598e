"""A booking's recipient (phone, street) in full only for whoever booked and the applicant."""

from __future__ import annotations

from typing import Any

import pytest

from auth.models import Membership
from dossiers.models import Dossier
from tests.conftest import api_as, make_user
from tests.factories import make_dossier, make_organisation, make_procedure
from tests.postal.conftest import make_address

PHONE = "+84987111222"
STREET = "Ngõ 5 nhà 17"


def recipient(booking: dict[str, Any]) -> tuple[Any, ...]:
    return (
        booking["recipient_name"],
        booking["phone"],
        booking["street"],
        booking["commune_code"],
        booking["commune_name"],
        booking["province_code"],
    )


FULL = ("Trần Văn Bình", PHONE, STREET, "00070", "Phường Hoàn Kiếm", "01")
MASKED = ("Trần Văn Bình", "+8498•••1222", "", "00070", "Phường Hoàn Kiếm", "01")


@pytest.mark.django_db
def test_only_the_booker_and_the_applicant_see_the_recipients_phone_and_street() -> None:
    owner = make_user()
    organisation = make_organisation(owner)
    people = {"owner": owner}
    for role in ("admin", "applicant", "booker", "member"):
        people[role] = make_user()
        Membership.objects.create(
            organisation=organisation,
            user=people[role],
            role=Membership.Role.ADMIN if role == "admin" else Membership.Role.MEMBER,
        )
    dossier = make_dossier(
        people["applicant"],
        make_procedure(),
        status=Dossier.Status.ACCEPTED,
        organisation=organisation,
    )
    home = make_address(
        people["booker"], recipient_name="Trần Văn Bình", phone=PHONE, street=STREET
    )
    booked = api_as(people["booker"]).post(
        f"/api/v1/postal/dossiers/{dossier.id}/bookings",
        {"direction": "result", "address_id": str(home.id)},
    )
    assert booked.status_code == 201
    assert recipient(booked.json()) == FULL
    booking_id = booked.json()["id"]

    seen = {}
    for role, user in people.items():
        api = api_as(user)
        listed = api.get(f"/api/v1/postal/dossiers/{dossier.id}/bookings").json()["items"]
        one = api.get(f"/api/v1/postal/bookings/{booking_id}").json()
        assert [item["id"] for item in listed] == [booking_id]
        assert recipient(listed[0]) == recipient(one)
        seen[role] = recipient(one)
    assert seen == {
        "booker": FULL,
        "applicant": FULL,
        # Owners and admins manage membership, not their colleagues' contact details.
        "owner": MASKED,
        "admin": MASKED,
        "member": MASKED,
    }
