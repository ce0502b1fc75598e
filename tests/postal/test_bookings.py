"""Booking rules: who, when, one active booking, idempotent retry, concurrency."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from dossiers.models import Dossier, DossierEvent
from postal.models import DeliveryBooking
from tests.conftest import ApiClient, ApiResponse, make_user, sign_in
from tests.factories import make_organisation
from tests.postal.conftest import Citizen, make_address, postal_jobs


@pytest.mark.django_db
def test_book_result_delivery_is_pending_with_event_and_job(citizen: Citizen) -> None:
    response = citizen.book()
    assert response.status_code == 201
    data = response.json()
    booking = DeliveryBooking.objects.get()
    assert data["id"] == booking.pk
    assert data["status"] == "pending"
    assert data["waybill"] == ""
    assert data["order_number"] == f"{citizen.dossier.code}-{booking.pk}"
    assert data["dossier_code"] == citizen.dossier.code
    assert (data["recipient_name"], data["phone"], data["commune_code"], data["province_code"]) == (
        "Lê Thị Hoa",
        "+84912345678",
        "00070",
        "01",
    )
    assert (data["fee"], data["cod_amount"], data["zone"], data["can_change"]) == (
        16500,
        0,
        "local",
        True,
    )
    event = DossierEvent.objects.get(dossier=citizen.dossier)
    assert (event.type, event.actor_type, event.actor_user_id) == (
        "delivery.booked",
        "citizen",
        citizen.user.id,
    )
    assert event.data["booking_id"] == booking.pk
    assert event.data["direction"] == "result"
    jobs = postal_jobs("postal.send_booking")
    assert [(status, args) for _, status, args, _ in jobs] == [
        ("todo", {"booking_id": booking.pk, "revision": 1})
    ]


@pytest.mark.django_db
def test_postal_return_not_allowed_is_422_and_nothing_happens(db: None) -> None:
    citizen = Citizen(procedure={"postal_return_allowed": False})
    response = citizen.book()
    assert response.status_code == 422
    assert response.json()["code"] == "postal_return_not_allowed"
    assert DeliveryBooking.objects.count() == 0
    assert DossierEvent.objects.count() == 0
    assert postal_jobs() == []


@pytest.mark.django_db
def test_second_active_booking_is_409(citizen: Citizen) -> None:
    first = citizen.book()
    second = citizen.book()
    assert second.status_code == 409
    assert second.json()["code"] == "already_booked"
    assert second.json()["details"] == {"booking_id": first.json()["id"]}
    assert DeliveryBooking.objects.count() == 1


@pytest.mark.django_db
def test_idempotent_retry_replays_the_booking(citizen: Citizen) -> None:
    key = {"Idempotency-Key": "book-1"}
    first = citizen.book(headers=key)
    second = citizen.book(headers=key)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert DeliveryBooking.objects.count() == 1
    assert len(postal_jobs("postal.send_booking")) == 1
    assert DossierEvent.objects.filter(type="delivery.booked").count() == 1


@pytest.mark.django_db
def test_someone_who_cannot_see_the_dossier_gets_404(citizen: Citizen) -> None:
    stranger = make_user()
    api = ApiClient(token=sign_in(stranger)[1].access_token)
    address = make_address(stranger)
    response = api.post(
        f"/api/v1/postal/dossiers/{citizen.dossier.id}/bookings",
        {"direction": "result", "address_id": str(address.id)},
    )
    assert response.status_code == 404
    assert DeliveryBooking.objects.count() == 0


@pytest.mark.django_db
def test_organisation_member_may_book_for_the_company_dossier(citizen: Citizen) -> None:
    member = make_user()
    organisation = make_organisation(member)
    citizen.dossier.organisation = organisation
    citizen.dossier.save()
    api = ApiClient(token=sign_in(member)[1].access_token)
    address = make_address(member)
    response = api.post(
        f"/api/v1/postal/dossiers/{citizen.dossier.id}/bookings",
        {"direction": "result", "address_id": str(address.id)},
    )
    assert response.status_code == 201
    assert DeliveryBooking.objects.get().booked_by_id == member.id
    # ...and the applicant sees it too.
    assert citizen.api.get(f"/api/v1/postal/bookings/{response.json()['id']}").status_code == 200


@pytest.mark.django_db
def test_someone_elses_address_is_404(citizen: Citizen) -> None:
    other = make_address(make_user())
    response = citizen.api.post(
        f"/api/v1/postal/dossiers/{citizen.dossier.id}/bookings",
        {"direction": "result", "address_id": str(other.id)},
    )
    assert response.status_code == 404
    assert DeliveryBooking.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status",
    [
        Dossier.Status.DRAFT,
        Dossier.Status.REFUSED,
        Dossier.Status.WITHDRAWN,
        Dossier.Status.STOPPED,
        Dossier.Status.HANDED_OVER,
    ],
)
def test_closed_or_draft_dossier_cannot_be_booked(db: None, status: int) -> None:
    citizen = Citizen(status=status)
    response = citizen.book()
    assert response.status_code == 409
    assert response.json()["code"] == "dossier_not_eligible"
    assert DeliveryBooking.objects.count() == 0


@pytest.mark.django_db
def test_result_ready_dossier_can_still_be_booked(db: None) -> None:
    citizen = Citizen(status=Dossier.Status.RESULT_READY)
    assert citizen.book().status_code == 201


@pytest.mark.django_db
def test_book_pickup_of_a_paper_dossier(db: None) -> None:
    citizen = Citizen(channel=Dossier.Channel.POSTAL, status=Dossier.Status.NEW)
    response = citizen.book("pickup")
    assert response.status_code == 201
    assert (response.json()["direction"], response.json()["status"]) == ("pickup", "pending")
    # Pickup and result delivery are separate: one active booking of each.
    assert citizen.book("pickup").json()["code"] == "already_booked"
    assert citizen.book("result").status_code == 201
    assert DeliveryBooking.objects.count() == 2


@pytest.mark.django_db
def test_pickup_only_for_postal_channel(citizen: Citizen) -> None:
    response = citizen.book("pickup")
    assert response.status_code == 422
    assert response.json()["code"] == "postal_pickup_not_allowed"
    assert DeliveryBooking.objects.count() == 0


@pytest.mark.django_db
def test_list_and_get_bookings(citizen: Citizen) -> None:
    booked = citizen.book().json()
    listed = citizen.api.get(f"/api/v1/postal/dossiers/{citizen.dossier.id}/bookings").json()
    assert [item["id"] for item in listed["items"]] == [booked["id"]]
    assert citizen.api.get(f"/api/v1/postal/bookings/{booked['id']}").json() == booked
    stranger = ApiClient(token=sign_in(make_user())[1].access_token)
    assert stranger.get(f"/api/v1/postal/bookings/{booked['id']}").status_code == 404
    assert stranger.get(f"/api/v1/postal/dossiers/{citizen.dossier.id}/bookings").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_bookings_give_exactly_one(citizen: Citizen) -> None:
    barrier = threading.Barrier(20)
    results: list[ApiResponse] = []
    lock = threading.Lock()

    def attempt(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            response = citizen.book(headers={"Idempotency-Key": f"concurrent-{index}"})
            with lock:
                results.append(response)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * 19
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"already_booked"}
    assert DeliveryBooking.objects.count() == 1
    assert DossierEvent.objects.filter(type="delivery.booked").count() == 1
    assert len(postal_jobs("postal.send_booking")) == 1
