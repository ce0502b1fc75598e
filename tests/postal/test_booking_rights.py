"""Who may cancel or re-address a booking of an organisation's dossier.

Whoever booked it, the dossier's applicant and the organisation's owners and admins;
the organisation's other members see the booking (masked) but get 403 `not_booker`,
and nothing happens: the booking stays, no carrier job, no event.
"""

from __future__ import annotations

from typing import Any

import pytest

from dossiers.models import Dossier, DossierEvent
from postal.actions import record_carrier_order
from postal.models import DeliveryBooking
from tests.conftest import api_as
from tests.factories import make_dossier, make_procedure, make_team
from tests.postal.conftest import CA_MAU_COMMUNE, make_address, postal_jobs

WAYBILL = "EB000000001VN"
NOT_BOOKER = {
    "vi": "Chỉ người đặt yêu cầu chuyển phát này, người nộp hồ sơ, chủ sở hữu và quản trị "
    "viên của tổ chức mới được hủy hoặc đổi địa chỉ.",
    "en": "Only whoever booked this delivery, the dossier's applicant and the organisation's "
    "owners and administrators can cancel it or change its address.",
}


class Team:
    """An organisation's dossier (of `applicant`) whose result delivery `booker` booked to
    their home; the carrier has the order (waybill)."""

    def __init__(self) -> None:
        _organisation, self.people = make_team("owner", "admin", "applicant", "booker", "member")
        self.dossier = make_dossier(
            self.people["applicant"],
            make_procedure(),
            status=Dossier.Status.ACCEPTED,
            organisation=_organisation,
        )
        home = make_address(self.people["booker"], street="Ngõ 5 nhà 17")
        booked = api_as(self.people["booker"]).post(
            f"/api/v1/postal/dossiers/{self.dossier.id}/bookings",
            {"direction": "result", "address_id": str(home.id)},
        )
        assert booked.status_code == 201, booked
        self.booking_id = booked.json()["id"]
        assert record_carrier_order(self.booking_id, 1, WAYBILL) == "booked"

    def booking(self) -> DeliveryBooking:
        return DeliveryBooking.objects.get(pk=self.booking_id)

    def state(self) -> tuple[Any, ...]:
        """Everything a cancel or a change of address would touch."""
        booking = self.booking()
        events = DossierEvent.objects.filter(dossier=self.dossier).order_by("seq")
        return (
            booking.status,
            booking.waybill,
            booking.revision,
            booking.order_number,
            booking.commune_code,
            booking.street,
            booking.booked_by_id,
            list(events.values_list("type", flat=True)),
            postal_jobs(),
        )


@pytest.fixture
def team(db: None) -> Team:
    return Team()


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_a_plain_member_cannot_cancel_a_colleagues_booking(team: Team, language: str) -> None:
    before = team.state()
    response = api_as(team.people["member"], language).post(
        f"/api/v1/postal/bookings/{team.booking_id}/cancel"
    )
    assert response.status_code == 403
    assert response.json() == {
        "code": "not_booker",
        "message": NOT_BOOKER[language],
        "details": None,
    }
    assert team.state() == before
    assert team.booking().status == "booked"
    assert postal_jobs("postal.cancel_carrier_order") == []
    assert not DossierEvent.objects.filter(type="delivery.cancelled").exists()


@pytest.mark.django_db
def test_a_plain_member_cannot_move_a_colleagues_booking_to_their_address(team: Team) -> None:
    member = team.people["member"]
    own_address = make_address(member, CA_MAU_COMMUNE)
    before = team.state()
    response = api_as(member).put(
        f"/api/v1/postal/bookings/{team.booking_id}/address", {"address_id": str(own_address.id)}
    )
    assert (response.status_code, response.json()["code"]) == (403, "not_booker")
    assert team.state() == before
    assert (team.booking().revision, team.booking().commune_code) == (1, "00070")
    assert postal_jobs("postal.cancel_carrier_order") == []
    assert len(postal_jobs("postal.send_booking")) == 1  # the first order's only


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["booker", "applicant", "admin", "owner"])
def test_the_booker_the_applicant_and_managers_may_cancel(team: Team, who: str) -> None:
    response = api_as(team.people[who]).post(f"/api/v1/postal/bookings/{team.booking_id}/cancel")
    assert response.status_code == 200, response
    assert (response.json()["status"], response.json()["can_change"]) == ("cancelled", False)
    assert team.booking().status == "cancelled"
    assert [job[2] for job in postal_jobs("postal.cancel_carrier_order")] == [
        {"carrier": "vnpost", "waybill": WAYBILL}
    ]
    cancelled = DossierEvent.objects.get(dossier=team.dossier, type="delivery.cancelled")
    assert cancelled.actor_user_id == team.people[who].id


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["booker", "applicant", "admin", "owner"])
def test_the_booker_the_applicant_and_managers_may_change_the_address(team: Team, who: str) -> None:
    user = team.people[who]
    new_home = make_address(user, CA_MAU_COMMUNE, phone="+84987111222", street="Số 5 Trần Phú")
    response = api_as(user).put(
        f"/api/v1/postal/bookings/{team.booking_id}/address", {"address_id": str(new_home.id)}
    )
    assert response.status_code == 200, response
    booking = team.booking()
    assert (booking.status, booking.revision, booking.commune_code) == (
        "pending",
        2,
        CA_MAU_COMMUNE,
    )
    # The booking now carries their address: they are whoever booked it.
    assert booking.booked_by_id == user.id
    assert (response.json()["phone"], response.json()["street"]) == (
        "+84987111222",
        "Số 5 Trần Phú",
    )
    assert [job[2] for job in postal_jobs("postal.cancel_carrier_order")] == [
        {"carrier": "vnpost", "waybill": WAYBILL}
    ]
    assert DossierEvent.objects.filter(dossier=team.dossier, type="delivery.booked").count() == 2


@pytest.mark.django_db
def test_after_an_admins_change_the_previous_booker_sees_the_admins_address_masked(
    team: Team,
) -> None:
    admin = team.people["admin"]
    new_home = make_address(admin, CA_MAU_COMMUNE, phone="+84987111222", street="Số 5 Trần Phú")
    changed = api_as(admin).put(
        f"/api/v1/postal/bookings/{team.booking_id}/address", {"address_id": str(new_home.id)}
    )
    assert changed.status_code == 200, changed
    seen = {
        who: api_as(team.people[who]).get(f"/api/v1/postal/bookings/{team.booking_id}").json()
        for who in ("admin", "applicant", "booker")
    }
    assert {who: (b["phone"], b["street"]) for who, b in seen.items()} == {
        "admin": ("+84987111222", "Số 5 Trần Phú"),
        "applicant": ("+84987111222", "Số 5 Trần Phú"),
        "booker": ("+8498•••1222", ""),
    }
    # ...and may no longer cancel what is now the admin's booking.
    refused = api_as(team.people["booker"]).post(
        f"/api/v1/postal/bookings/{team.booking_id}/cancel"
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "not_booker")
    assert team.booking().status == "pending"


@pytest.mark.django_db
def test_nobody_moves_a_booking_to_someone_elses_saved_address(team: Team) -> None:
    """The address is one of the caller's own: an admin naming the booker's other
    address (or anyone's) gets 404, and the booking stays."""
    booker_other = make_address(team.people["booker"], CA_MAU_COMMUNE)
    before = team.state()
    response = api_as(team.people["admin"]).put(
        f"/api/v1/postal/bookings/{team.booking_id}/address", {"address_id": str(booker_other.id)}
    )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert team.state() == before


@pytest.mark.django_db
def test_can_change_says_who_may_change(team: Team) -> None:
    seen = {
        who: api_as(user).get(f"/api/v1/postal/bookings/{team.booking_id}").json()["can_change"]
        for who, user in team.people.items()
    }
    assert seen == {
        "owner": True,
        "admin": True,
        "applicant": True,
        "booker": True,
        "member": False,
    }
    listed = api_as(team.people["member"]).get(
        f"/api/v1/postal/dossiers/{team.dossier.id}/bookings"
    )
    assert [item["can_change"] for item in listed.json()["items"]] == [False]
