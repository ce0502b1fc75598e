"""Cancel or change the address before pickup; after pickup, 409 already_picked_up."""

from __future__ import annotations

import pytest

from dossiers.models import DossierEvent
from fakes.carrier import FakeCarrier
from postal.models import DeliveryBooking
from tests.conftest import ApiClient, make_user, sign_in
from tests.postal.conftest import (
    CA_MAU_COMMUNE,
    Citizen,
    make_address,
    post_webhook,
    postal_jobs,
    run_postal_jobs,
)


def events(citizen: Citizen) -> list[str]:
    return list(
        DossierEvent.objects.filter(dossier=citizen.dossier)
        .order_by("seq")
        .values_list("type", flat=True)
    )


def picked_up(booking: DeliveryBooking) -> None:
    response = post_webhook(
        {
            "message_id": "m-pickup",
            "order_number": booking.order_number,
            "waybill": booking.waybill,
            "status": "picked_up",
            "occurred_at": "2026-11-24T09:00:00+07:00",
        }
    )
    assert response.json()["outcome"] == "applied"


@pytest.mark.django_db(transaction=True)
def test_cancel_before_pickup_cancels_the_carrier_order(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen()
    booking_id = citizen.book().json()["id"]
    run_postal_jobs()
    response = citizen.api.post(f"/api/v1/postal/bookings/{booking_id}/cancel")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["can_change"]) == ("cancelled", False)
    assert events(citizen) == ["delivery.booked", "delivery.cancelled"]
    cancelled = DossierEvent.objects.get(type="delivery.cancelled")
    assert (cancelled.actor_type, cancelled.data["reason"]) == ("citizen", "cancelled_by_citizen")
    run_postal_jobs()
    assert fake_carrier.by_waybill("EB000000001VN")["status"] == "cancelled"
    assert postal_jobs("postal.cancel_carrier_order")[0][1:3] == (
        "succeeded",
        {"carrier": "vnpost", "waybill": "EB000000001VN"},
    )
    # The dossier may be booked again.
    assert citizen.book().status_code == 201


@pytest.mark.django_db
def test_cancel_after_pickup_is_409(citizen: Citizen) -> None:
    booking_id = citizen.book().json()["id"]
    DeliveryBooking.objects.filter(pk=booking_id).update(status="booked", waybill="EB1VN")
    picked_up(DeliveryBooking.objects.get(pk=booking_id))
    response = citizen.api.post(f"/api/v1/postal/bookings/{booking_id}/cancel")
    assert response.status_code == 409
    assert response.json()["code"] == "already_picked_up"
    assert DeliveryBooking.objects.get(pk=booking_id).status == "picked_up"
    assert events(citizen) == ["delivery.booked", "delivery.picked_up"]
    assert postal_jobs("postal.cancel_carrier_order") == []


@pytest.mark.django_db
def test_cancel_twice_is_409_not_active(citizen: Citizen) -> None:
    booking_id = citizen.book().json()["id"]
    assert citizen.api.post(f"/api/v1/postal/bookings/{booking_id}/cancel").status_code == 200
    again = citizen.api.post(f"/api/v1/postal/bookings/{booking_id}/cancel")
    assert (again.status_code, again.json()["code"]) == (409, "booking_not_active")
    assert events(citizen) == ["delivery.booked", "delivery.cancelled"]


@pytest.mark.django_db
def test_stranger_cannot_cancel(citizen: Citizen) -> None:
    booking_id = citizen.book().json()["id"]
    stranger = ApiClient(token=sign_in(make_user())[1].access_token)
    assert stranger.post(f"/api/v1/postal/bookings/{booking_id}/cancel").status_code == 404
    assert DeliveryBooking.objects.get(pk=booking_id).status == "pending"


@pytest.mark.django_db(transaction=True)
def test_change_address_before_pickup_replaces_the_carrier_order(
    fake_carrier: FakeCarrier,
) -> None:
    citizen = Citizen()
    booking_id = citizen.book().json()["id"]
    run_postal_jobs()
    new_address = make_address(citizen.user, CA_MAU_COMMUNE, street="Số 5 đường Trần Phú")
    response = citizen.api.put(
        f"/api/v1/postal/bookings/{booking_id}/address", {"address_id": str(new_address.id)}
    )
    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["waybill"], data["commune_code"], data["province_code"]) == (
        "pending",
        "",
        CA_MAU_COMMUNE,
        "96",
    )
    assert (data["order_number"], data["zone"], data["fee"]) == (
        f"{citizen.dossier.code}-{booking_id}-r2",
        "far",
        27500,
    )
    run_postal_jobs()
    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert (booking.status, booking.waybill, booking.revision) == ("booked", "EB000000002VN", 2)
    assert fake_carrier.by_waybill("EB000000001VN")["status"] == "cancelled"
    new_order = fake_carrier.by_waybill("EB000000002VN")
    assert new_order["payload"]["receiver"]["address"]["commune_code"] == CA_MAU_COMMUNE
    assert len(fake_carrier.orders) == 2
    assert events(citizen) == ["delivery.booked", "delivery.booked"]
    assert DossierEvent.objects.filter(type="delivery.booked").last().data["address_changed"]


@pytest.mark.django_db
def test_change_address_after_pickup_is_409(citizen: Citizen) -> None:
    booking_id = citizen.book().json()["id"]
    DeliveryBooking.objects.filter(pk=booking_id).update(status="booked", waybill="EB1VN")
    picked_up(DeliveryBooking.objects.get(pk=booking_id))
    new_address = make_address(citizen.user, CA_MAU_COMMUNE)
    response = citizen.api.put(
        f"/api/v1/postal/bookings/{booking_id}/address", {"address_id": str(new_address.id)}
    )
    assert (response.status_code, response.json()["code"]) == (409, "already_picked_up")
    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert (booking.commune_code, booking.revision) == ("00070", 1)


@pytest.mark.django_db(transaction=True)
def test_cancel_while_the_order_is_being_created_cancels_the_new_order(
    fake_carrier: FakeCarrier,
) -> None:
    """The job created the order, but the citizen cancelled before it recorded it."""
    from postal.actions import record_carrier_order

    citizen = Citizen()
    booking_id = citizen.book().json()["id"]
    citizen.api.post(f"/api/v1/postal/bookings/{booking_id}/cancel")
    assert record_carrier_order(booking_id, 1, "EB000000077VN") == "orphan_cancelled"
    assert postal_jobs("postal.cancel_carrier_order")[0][2] == {
        "carrier": "vnpost",
        "waybill": "EB000000077VN",
    }
    assert DeliveryBooking.objects.get(pk=booking_id).waybill == ""
