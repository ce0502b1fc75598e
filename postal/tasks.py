"""Jobs talking to the carrier, and the subscriber to dossier events.

Carrier jobs retry with exponential backoff on CarrierUnavailable (carrier
down, timeouts, rate limits); refusals are final and handled in the action.
"""

from __future__ import annotations

import logging

from django.conf import settings
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from backend.jobs import RETRY_ON_INFRASTRUCTURE, RetryOnInfrastructure
from dossiers.events import EventType
from dossiers.models import DossierEvent
from postal import actions
from postal.carriers import CarrierRejected, CarrierUnavailable, get_adapter

logger = logging.getLogger(__name__)

CLOSING_EVENTS = {EventType.DOSSIER_WITHDRAWN, EventType.DOSSIER_REFUSED, EventType.DOSSIER_STOPPED}

CARRIER_RETRY = RetryOnInfrastructure(
    otherwise=RetryStrategy(
        max_attempts=settings.POSTAL_JOB_MAX_ATTEMPTS,
        exponential_wait=settings.POSTAL_JOB_BACKOFF_SECONDS,
        retry_exceptions=[CarrierUnavailable],
    )
)


@app.task(queue="postal", name="postal.send_booking", retry=CARRIER_RETRY)
def send_booking(booking_id: int, revision: int) -> str:
    """Create the carrier order of a pending booking and record its waybill."""
    return actions.send_booking_to_carrier(booking_id, revision)


@app.task(queue="postal", name="postal.request_collection", retry=CARRIER_RETRY)
def request_collection(booking_id: int, waybill: str) -> None:
    """Ask the carrier to collect a ready result from the agency."""
    booking = actions.DeliveryBooking.objects.filter(pk=booking_id, waybill=waybill).first()
    if booking is None or booking.status != actions.Status.READY_FOR_PICKUP:
        return
    try:
        get_adapter(booking.carrier).request_collection(waybill)
    except CarrierRejected as exc:
        logger.warning("booking %s: collection refused by the carrier (%s)", booking_id, exc.code)


@app.task(queue="postal", name="postal.cancel_carrier_order", retry=CARRIER_RETRY)
def cancel_carrier_order(carrier: str, waybill: str) -> None:
    try:
        get_adapter(carrier).cancel_order(waybill)
    except CarrierRejected as exc:
        # Typically already collected: the carrier will return the parcel; an
        # operator sees this line and the cancelled booking in the admin.
        logger.warning("carrier %s refused to cancel an order (%s)", carrier, exc.code)


@app.task(queue="postal", name="postal.on_dossier_event", retry=RETRY_ON_INFRASTRUCTURE)
def on_dossier_event(event_id: int) -> None:
    """Subscriber to every dossier event (settings.EVENT_SUBSCRIBERS).

    Rule: `dossier.completed` (result ready, status 9) hands a booked result
    delivery over to the carrier. A withdrawn, refused or stopped dossier ends
    the bookings the carrier has not collected yet. Other events are not ours.
    """
    event = DossierEvent.objects.filter(pk=event_id).only("type", "dossier_id").first()
    if event is None:
        return
    if event.type == EventType.DOSSIER_COMPLETED:
        actions.hand_over_to_carrier(event.dossier_id)
    elif event.type in CLOSING_EVENTS:
        actions.cancel_bookings_of_closed_dossier(event.dossier_id, reason=event.type)
