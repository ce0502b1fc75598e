"""Hand-over: a dossier.completed event sends the carrier to collect the booked result."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import transaction

from dossiers.events import record_event
from dossiers.models import Dossier, DossierEvent
from fakes.carrier import FakeCarrier
from postal.models import DeliveryBooking
from tests.postal.conftest import Citizen, postal_jobs, run_postal_jobs

pytestmark = pytest.mark.django_db(transaction=True)


def agency_event(dossier: Dossier, type: str, status: int | None = None, **data) -> None:
    """What the agency's lifecycle actions do: change the status and log the event."""
    with transaction.atomic():
        locked = Dossier.objects.select_for_update().get(pk=dossier.pk)
        before = locked.status
        if status is not None:
            locked.status = status
            locked.save(update_fields=["status"])
        record_event(
            locked,
            type=type,
            actor_type=DossierEvent.Actor.AGENCY,
            status_before=before,
            status_after=locked.status,
            data=data,
        )


def test_postal_subscribes_to_dossier_events() -> None:
    assert "postal.tasks.on_dossier_event" in settings.EVENT_SUBSCRIBERS


def test_result_ready_makes_the_carrier_collect(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen(status=Dossier.Status.PROCESSING)
    booking_id = citizen.book().json()["id"]
    run_postal_jobs()
    assert DeliveryBooking.objects.get(pk=booking_id).status == "booked"

    agency_event(citizen.dossier, "dossier.completed", Dossier.Status.RESULT_READY)
    run_postal_jobs()  # the subscriber, then the collection request it deferred

    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert booking.status == "ready_for_pickup"
    assert fake_carrier.paths() == [
        "POST /v1/orders",
        "POST /v1/orders/EB000000001VN/collect",
    ]
    assert fake_carrier.by_waybill("EB000000001VN")["status"] == "awaiting_collection"
    assert postal_jobs("postal.request_collection")[0][1] == "succeeded"


def test_other_events_do_not_hand_over(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen(status=Dossier.Status.ACCEPTED)
    booking_id = citizen.book().json()["id"]
    run_postal_jobs()
    agency_event(citizen.dossier, "dossier.processing_started", Dossier.Status.PROCESSING)
    run_postal_jobs()
    assert DeliveryBooking.objects.get(pk=booking_id).status == "booked"
    assert postal_jobs("postal.request_collection") == []
    assert fake_carrier.paths() == ["POST /v1/orders"]


def test_result_ready_without_a_booking_does_nothing(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen(status=Dossier.Status.PROCESSING)
    agency_event(citizen.dossier, "dossier.completed", Dossier.Status.RESULT_READY)
    run_postal_jobs()
    assert postal_jobs("postal.on_dossier_event")[0][1] == "succeeded"
    assert postal_jobs("postal.request_collection") == []
    assert fake_carrier.requests == []


def test_result_ready_while_the_booking_is_still_pending(fake_carrier: FakeCarrier) -> None:
    """The carrier was down at booking time; the order job asks for collection later."""
    citizen = Citizen(status=Dossier.Status.PROCESSING)
    booking_id = citizen.book().json()["id"]
    fake_carrier.fail_next("error", status=503)
    run_postal_jobs()
    agency_event(citizen.dossier, "dossier.completed", Dossier.Status.RESULT_READY)
    run_postal_jobs()
    assert DeliveryBooking.objects.get(pk=booking_id).status == "pending"

    from tests.postal.conftest import make_retries_due

    make_retries_due()
    run_postal_jobs()
    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert booking.status == "ready_for_pickup"
    assert fake_carrier.paths()[-1] == f"POST /v1/orders/{booking.waybill}/collect"


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("dossier.withdrawn", Dossier.Status.WITHDRAWN),
        ("dossier.refused", Dossier.Status.REFUSED),
        ("dossier.stopped", Dossier.Status.STOPPED),
    ],
)
def test_closed_dossier_cancels_uncollected_bookings(
    fake_carrier: FakeCarrier, event_type: str, status: int
) -> None:
    citizen = Citizen(status=Dossier.Status.NEW)
    booking_id = citizen.book().json()["id"]
    run_postal_jobs()
    agency_event(citizen.dossier, event_type, status)
    run_postal_jobs()  # the subscriber, then the carrier cancellation
    booking = DeliveryBooking.objects.get(pk=booking_id)
    assert booking.status == "cancelled"
    cancelled = DossierEvent.objects.get(dossier=citizen.dossier, type="delivery.cancelled")
    assert (cancelled.actor_type, cancelled.data["reason"]) == ("system", event_type)
    assert fake_carrier.by_waybill(booking.waybill)["status"] == "cancelled"


def test_closed_dossier_leaves_a_collected_parcel_alone(fake_carrier: FakeCarrier) -> None:
    citizen = Citizen(status=Dossier.Status.NEW)
    booking_id = citizen.book().json()["id"]
    DeliveryBooking.objects.filter(pk=booking_id).update(status="in_transit", waybill="EB5VN")
    agency_event(citizen.dossier, "dossier.withdrawn", Dossier.Status.WITHDRAWN)
    run_postal_jobs()
    assert DeliveryBooking.objects.get(pk=booking_id).status == "in_transit"
    assert not DossierEvent.objects.filter(type="delivery.cancelled").exists()
