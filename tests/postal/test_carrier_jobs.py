"""The booking job: order to the carrier, waybill recorded, retries, never two orders."""

from __future__ import annotations

import pytest

from dossiers.models import Dossier, DossierEvent, Procedure
from fakes.carrier import FakeCarrier
from postal.models import DeliveryBooking
from tests.postal.conftest import (
    Citizen,
    make_retries_due,
    postal_jobs,
    run_postal_jobs,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_job_sends_the_order_and_records_the_waybill(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen(procedure={"fee_amount": 50000, "fee_timing": Procedure.FeeTiming.AFTER})
    booking_id = citizen.book().json()["id"]
    run_postal_jobs()

    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert (booking.status, booking.waybill, booking.last_error) == ("booked", "EB000000001VN", "")
    [order] = fake_carrier.orders.values()
    payload = order["payload"]
    assert payload["order_number"] == f"{citizen.dossier.code}-{booking_id}"
    assert payload["reference"] == citizen.dossier.code
    assert payload["receiver"] == {
        "name": "Lê Thị Hoa",
        "phone": "+84912345678",
        "address": {"street": "Số 12 phố Huế", "commune_code": "00070", "province_code": "01"},
    }
    assert payload["sender"]["address"] == {
        "street": citizen.dossier.agency.name,
        "commune_code": "00004",
        "province_code": "01",
    }
    assert (payload["cod_amount"], payload["postage"], payload["weight_grams"]) == (
        50000,
        16500,
        200,
    )
    assert [(name, status) for name, status, _, _ in postal_jobs()] == [
        ("postal.send_booking", "succeeded")
    ]
    shown = citizen.api.get(f"/api/v1/postal/bookings/{booking_id}").json()
    assert (shown["status"], shown["waybill"]) == ("booked", "EB000000001VN")


def test_carrier_down_retries_with_backoff_and_books_once(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen()
    booking_id = citizen.book().json()["id"]
    fake_carrier.fail_next("error", status=503, times=2)

    run_postal_jobs()
    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert (booking.status, booking.last_error) == ("pending", "carrier_unavailable")
    # The citizen sees a pending booking, not an error.
    shown = citizen.api.get(f"/api/v1/postal/bookings/{booking_id}")
    assert (shown.status_code, shown.json()["status"]) == (200, "pending")
    [(_, status, _, attempts)] = postal_jobs("postal.send_booking")
    assert (status, attempts) == ("todo", 1)  # rescheduled by the retry strategy

    run_postal_jobs()  # not due yet: the backoff holds it
    assert postal_jobs("postal.send_booking")[0][3] == 1

    make_retries_due()
    run_postal_jobs()
    assert postal_jobs("postal.send_booking")[0][1:4:2] == ("todo", 2)
    make_retries_due()
    run_postal_jobs()

    booking.refresh_from_db()
    assert (booking.status, booking.waybill, booking.last_error) == ("booked", "EB000000001VN", "")
    assert postal_jobs("postal.send_booking")[0][1] == "succeeded"
    assert len(fake_carrier.orders) == 1


def test_lost_response_then_retry_never_makes_two_orders(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen()
    booking_id = citizen.book().json()["id"]
    fake_carrier.fail_next("hang_after_create")  # order created, answer lost (timeout)

    run_postal_jobs()
    assert DeliveryBooking.objects.get(pk=booking_id).last_error == "carrier_timeout"
    make_retries_due()
    run_postal_jobs()

    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert (booking.status, booking.waybill) == ("booked", "EB000000001VN")
    assert len(fake_carrier.orders) == 1
    assert fake_carrier.paths() == ["POST /v1/orders", "POST /v1/orders"]


def test_job_for_a_booked_booking_does_nothing(fake_carrier: FakeCarrier) -> None:
    from postal.actions import send_booking_to_carrier

    citizen = Citizen()
    booking_id = citizen.book().json()["id"]
    run_postal_jobs()
    assert send_booking_to_carrier(booking_id, 1) == "skipped"  # state guard
    assert len(fake_carrier.requests) == 1


def test_carrier_refusal_ends_the_booking_and_tells_the_citizen(
    fake_carrier: FakeCarrier,
) -> None:
    citizen = Citizen()
    booking_id = citizen.book().json()["id"]
    fake_carrier.fail_next("error", status=400, code="INVALID_ADDRESS")
    run_postal_jobs()

    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert (booking.status, booking.last_error) == ("rejected", "carrier_invalid_address")
    assert postal_jobs("postal.send_booking")[0][1] == "succeeded"  # final, not retried
    events = list(DossierEvent.objects.filter(dossier=citizen.dossier).order_by("seq"))
    assert [e.type for e in events] == ["delivery.booked", "delivery.cancelled"]
    assert (events[1].actor_type, events[1].data["reason"]) == (
        "carrier",
        "carrier_invalid_address",
    )
    # The dossier is free for a new booking.
    assert citizen.book().status_code == 201


def test_cancelled_while_pending_sends_no_order(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen()
    booking_id = citizen.book().json()["id"]
    assert citizen.api.post(f"/api/v1/postal/bookings/{booking_id}/cancel").status_code == 200
    run_postal_jobs()
    assert fake_carrier.requests == []
    assert DeliveryBooking.objects.get(pk=booking_id).status == "cancelled"


def test_booking_after_the_result_is_ready_asks_for_collection(
    fake_carrier: FakeCarrier,
) -> None:
    citizen = Citizen(status=Dossier.Status.RESULT_READY)
    booking_id = citizen.book().json()["id"]
    run_postal_jobs()  # creates the order, then defers and runs the collection request

    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert booking.status == "ready_for_pickup"
    assert fake_carrier.paths() == [
        "POST /v1/orders",
        f"POST /v1/orders/{booking.waybill}/collect",
    ]
    assert [(name, status) for name, status, _, _ in postal_jobs()] == [
        ("postal.send_booking", "succeeded"),
        ("postal.request_collection", "succeeded"),
    ]


def test_pickup_order_goes_from_the_citizen_to_the_agency(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen(channel=Dossier.Channel.POSTAL, status=Dossier.Status.NEW)
    booking_id = citizen.book("pickup").json()["id"]
    run_postal_jobs()
    [order] = fake_carrier.orders.values()
    assert order["payload"]["sender"]["name"] == "Lê Thị Hoa"
    assert order["payload"]["receiver"]["address"]["commune_code"] == "00004"
    assert order["payload"]["cod_amount"] == 0
    assert DeliveryBooking.objects.get(pk=booking_id).status == "booked"
