"""Who may cancel or re-address a booking of an organisation's dossier.

Whoever booked it, the dossier's applicant and the organisation's owners and admins;
the organisation's other members see the booking (masked) but get 403 `not_booker`,
and nothing happens: the booking stays, no carrier job, no event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dossiers.models import Dossier, DossierEvent
from postal.actions import record_carrier_order
from postal.models import CarrierMessage, DeliveryBooking
from tests.conftest import ApiResponse, api_as
from tests.factories import make_dossier, make_procedure, make_team
from tests.postal.conftest import CA_MAU_COMMUNE, make_address, postal_jobs

WAYBILL = "EB000000001VN"
BOOKING_KEY = {"Idempotency-Key": "team-booking"}
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
        self.home = make_address(self.people["booker"], street="Ngõ 5 nhà 17")
        booked = self.book()
        assert booked.status_code == 201, booked
        self.booked = booked.json()
        self.booking_id = self.booked["id"]
        assert record_carrier_order(self.booking_id, 1, WAYBILL) == "booked"

    def book(self) -> ApiResponse:
        """The booker's booking of the result to their home (again: a replay)."""
        return api_as(self.people["booker"]).post(
            f"/api/v1/postal/dossiers/{self.dossier.id}/bookings",
            {"direction": "result", "address_id": str(self.home.id)},
            headers=BOOKING_KEY,
        )

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


# --- Replays ---------------------------------------------------------------------------------


@pytest.mark.parametrize("since", ["nothing", "picked up", "re-addressed by an admin"])
def test_a_replayed_booking_says_whether_the_booker_may_change_it_now(
    team: Team, since: str
) -> None:
    """A retry with the same Idempotency-Key replays the first answer, except `can_change`:
    read again, so the replay never offers a cancel the cancel route would refuse."""
    assert team.booked["can_change"] is True
    if since == "picked up":
        DeliveryBooking.objects.filter(pk=team.booking_id).update(status="picked_up")
    elif since == "re-addressed by an admin":
        admin = team.people["admin"]
        changed = api_as(admin).put(
            f"/api/v1/postal/bookings/{team.booking_id}/address",
            {"address_id": str(make_address(admin, CA_MAU_COMMUNE).id)},
        )
        assert changed.status_code == 200, changed

    replay = team.book()

    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == {**team.booked, "can_change": since == "nothing"}
    # What the cancel route answers the booker now.
    cancel = api_as(team.people["booker"]).post(f"/api/v1/postal/bookings/{team.booking_id}/cancel")
    assert (
        cancel.status_code
        == {
            "nothing": 200,
            "picked up": 409,  # already_picked_up
            "re-addressed by an admin": 403,  # not_booker
        }[since]
    )


# --- The list's cost ------------------------------------------------------------------------


def _more_bookings(team: Team, cancelled: int) -> None:
    """Older bookings of the dossier: the paper dossier's pickup, still changeable, booked
    by the applicant; then `cancelled` results booked by the booker, each with one report
    of the carrier shown in `updates` and one stale report that is not."""
    made = team.booking().created_at
    for number in range(cancelled + 1):
        booking = team.booking()
        booking.pk = None
        booking.order_number = f"{booking.order_number}-older-{number}"
        if number == 0:
            booking.direction = DeliveryBooking.Direction.PICKUP
            booking.booked_by = team.people["applicant"]
        else:
            booking.status = DeliveryBooking.Status.CANCELLED
        booking.save()
        DeliveryBooking.objects.filter(pk=booking.pk).update(
            created_at=made - dt.timedelta(hours=number + 1)
        )
        if number == 0:
            continue
        for outcome in (CarrierMessage.Outcome.APPLIED, CarrierMessage.Outcome.STALE):
            CarrierMessage.objects.create(
                carrier="vnpost",
                message_id=f"older-{number}-{outcome}",
                booking=booking,
                status="picked_up",
                occurred_at=made,
                payload={"location": f"Bưu cục {number}"},
                outcome=outcome,
            )


def _listed(team: Team, who: str) -> tuple[int, int, list[tuple[str, bool, str, list[str]]]]:
    """The queries of the list as `who` sees it, those of them that read memberships, and
    what it shows of each booking."""
    client = api_as(team.people[who])
    url = f"/api/v1/postal/dossiers/{team.dossier.id}/bookings"
    client.get(url)  # warm: anything read once per process
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response
    memberships = [q for q in captured.captured_queries if "accounts_membership" in q["sql"]]
    return (
        len(captured),
        len(memberships),
        [
            (item["direction"], item["can_change"], item["phone"], item["updates"])
            for item in response.json()["items"]
        ],
    )


@pytest.mark.parametrize("who", ["member", "admin", "booker", "applicant"])
def test_the_bookings_list_costs_as_many_queries_for_many_bookings_as_for_one(
    team: Team, who: str
) -> None:
    queries_for_one, memberships_for_one, seen_one = _listed(team, who)
    _more_bookings(team, cancelled=4)

    queries_for_six, memberships_for_six, seen_six = _listed(team, who)

    booked_by_booker = "+84912345678" if who in ("booker", "applicant") else "+8491•••5678"
    booked_by_applicant = "+84912345678" if who == "applicant" else "+8491•••5678"
    assert seen_one == [("result", who != "member", booked_by_booker, [])]
    assert [(d, c, p, [u["location"] for u in updates]) for d, c, p, updates in seen_six] == [
        ("result", who != "member", booked_by_booker, []),
        ("pickup", who in ("admin", "applicant"), booked_by_applicant, []),
        *(("result", False, booked_by_booker, [f"Bưu cục {n}"]) for n in range(1, 5)),
    ]
    assert queries_for_six == queries_for_one
    # the caller's role, read once with the dossier (the applicant's is not needed)
    assert memberships_for_six == memberships_for_one == (0 if who == "applicant" else 1)
    # the session, the dossier, the caller's membership, the page of bookings, their
    # carrier reports
    assert queries_for_six == (4 if who == "applicant" else 5)
