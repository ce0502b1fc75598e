"""Every state change of the postal app: one function, one transaction each.

Lock order everywhere: the dossier row first, then the saved address, then the
booking row, so a citizen's cancel, the carrier's webhook and the hand-over job
never deadlock and never interleave on one dossier. A booking locks the saved
address it copies before referring to it, and deleting or editing an address
locks it first: a booking never points at an address deleted under it, and an
edit never brings a deleted address back.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from auth.models import User
from backend import old_address_api
from backend.errors import Conflict, Unprocessable
from backend.jobs import defer
from backend.times import rfc3339
from dossiers.access import access_dossier, require_may_act_for
from dossiers.events import EventType, record_event
from dossiers.models import Dossier, DossierEvent, Procedure
from postal import tariffs
from postal.access import access_address, access_booking
from postal.addresses import check_address
from postal.carriers import CarrierRejected, CarrierUnavailable, Order, Party, get_adapter
from postal.models import CarrierMessage, DeliveryBooking, SavedAddress

logger = logging.getLogger(__name__)

Status = DeliveryBooking.Status
Direction = DeliveryBooking.Direction

RESULT_OPEN_STATUSES = {
    Dossier.Status.NEW,
    Dossier.Status.ACCEPTED,
    Dossier.Status.PROCESSING,
    Dossier.Status.SUPPLEMENT_REQUESTED,
    Dossier.Status.PAYMENT_REQUESTED,
    Dossier.Status.RESULT_READY,
}
PICKUP_OPEN_STATUSES = {
    Dossier.Status.NEW,
    Dossier.Status.ACCEPTED,
    Dossier.Status.SUPPLEMENT_REQUESTED,
}

# How far along a booking is. A carrier status never moves a booking to a lower
# rank; the two of equal rank (a failed attempt, then out again) follow the
# carrier's own timestamps.
RANK: dict[str, int] = {
    Status.PENDING: 0,
    Status.BOOKED: 1,
    Status.READY_FOR_PICKUP: 2,
    Status.PICKED_UP: 3,
    Status.IN_TRANSIT: 4,
    Status.OUT_FOR_DELIVERY: 5,
    Status.FAILED_ATTEMPT: 5,
    Status.DELIVERED: 6,
    Status.RETURNED: 6,
}
FINAL_STATUSES = {Status.DELIVERED, Status.RETURNED, Status.CANCELLED, Status.REJECTED}
# The dossier event of each status a carrier's webhook may report (postal/webhooks.py).
CARRIER_EVENTS: dict[str, EventType] = {
    Status.PICKED_UP: EventType.DELIVERY_PICKED_UP,
    Status.IN_TRANSIT: EventType.DELIVERY_IN_TRANSIT,
    Status.OUT_FOR_DELIVERY: EventType.DELIVERY_OUT_FOR_DELIVERY,
    Status.FAILED_ATTEMPT: EventType.DELIVERY_FAILED_ATTEMPT,
    Status.DELIVERED: EventType.DELIVERY_DELIVERED,
    Status.RETURNED: EventType.DELIVERY_RETURNED,
}


# --- Saved addresses -------------------------------------------------------------------


def _address_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The row's fields. With `old_address` (written in the units before July 2025) the
    commune comes from its conversion, or must be one of its candidates when given."""
    old_text = (data.get("old_address") or "").strip()
    street = (data.get("street") or "").strip()
    commune_code = data.get("commune_code") or ""
    if old_text:
        conversion, commune_code = old_address_api.resolve_old_address(
            old_text, commune_code or None, "old_address"
        )
        street = street or conversion.street
    missing = [
        name for name, value in (("street", street), ("commune_code", commune_code)) if not value
    ]
    if missing:
        required = str(_("This field is required."))
        raise Unprocessable(
            details=[
                {"field": name, "location": "body", "code": "required", "message": required}
                for name in missing
            ]
        )
    phone, commune = check_address(
        phone=data["phone"],
        commune_code=commune_code,
        province_code=data.get("province_code"),
    )
    return {
        "label": data.get("label") or "",
        "recipient_name": data["recipient_name"].strip(),
        "phone": phone,
        "street": street[:255],
        "commune_code": commune.code,
        "province_code": commune.province_code,
        "entered_address": old_text,
    }


def create_address(user: User, data: dict[str, Any]) -> SavedAddress:
    fields = _address_fields(data)
    with transaction.atomic():
        # Serialise one user's creations so the limit holds under concurrency.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if SavedAddress.objects.filter(user=user).count() >= settings.POSTAL_MAX_ADDRESSES_PER_USER:
            raise Conflict(
                "too_many_addresses",
                _("You can keep at most %(limit)s addresses. Delete one first.")
                % {"limit": settings.POSTAL_MAX_ADDRESSES_PER_USER},
                details={"limit": settings.POSTAL_MAX_ADDRESSES_PER_USER},
            )
        return SavedAddress.objects.create(user=user, **fields)


def update_address(user: User, address_id: uuid.UUID, data: dict[str, Any]) -> SavedAddress:
    """Replace an address's fields. Bookings keep the copy they were made with."""
    with transaction.atomic():
        address = access_address(user, address_id, for_update=True)
        fields = _address_fields(data)
        for name, value in fields.items():
            setattr(address, name, value)
        # An UPDATE only: saving a row that is gone must never insert it again.
        address.save(force_update=True)
    return address


def delete_address(user: User, address_id: uuid.UUID) -> None:
    with transaction.atomic():
        access_address(user, address_id, for_update=True).delete()


# --- Quotes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    carrier: str
    direction: str
    from_province: str
    to_province: str
    weight_grams: int
    zone: str
    weight_class_grams: int
    fee: int
    cod_amount: int
    expected_days: int
    currency: str


def _check_direction_allowed(dossier: Dossier, direction: str) -> None:
    if direction == Direction.RESULT and not dossier.procedure.postal_return_allowed:
        raise Unprocessable(
            "postal_return_not_allowed",
            _("This procedure's result cannot be delivered by post."),
        )
    if direction == Direction.PICKUP and dossier.channel != Dossier.Channel.POSTAL:
        raise Unprocessable(
            "postal_pickup_not_allowed",
            _("Only dossiers submitted by post (paper) can be picked up from home."),
        )


def _cod_amount(dossier: Dossier, direction: str) -> int:
    procedure = dossier.procedure
    if (
        direction == Direction.RESULT
        and procedure.fee_timing == Procedure.FeeTiming.AFTER
        and procedure.fee_amount > 0
    ):
        return int(procedure.fee_amount)
    return 0


def _weight(direction: str) -> int:
    if direction == Direction.RESULT:
        return int(settings.POSTAL_RESULT_WEIGHT_GRAMS)
    return int(settings.POSTAL_PICKUP_WEIGHT_GRAMS)


def compute_quote(dossier: Dossier, address: SavedAddress, direction: str) -> Quote:
    """Postage and COD for sending `direction` between the agency and `address`."""
    _check_direction_allowed(dossier, direction)
    carrier = settings.POSTAL_DEFAULT_CARRIER
    agency_province = dossier.agency.province_code
    # Result: agency -> citizen. Pickup: citizen -> agency. Zones are symmetric.
    from_province, to_province = (
        (agency_province, address.province_code)
        if direction == Direction.RESULT
        else (address.province_code, agency_province)
    )
    weight = _weight(direction)
    try:
        price = get_adapter(carrier).quote(from_province, to_province, weight)
    except tariffs.TariffError as exc:
        raise Unprocessable(
            exc.code, _("The carrier has no price for this parcel."), details=None
        ) from exc
    return Quote(
        carrier=carrier,
        direction=direction,
        from_province=from_province,
        to_province=to_province,
        weight_grams=weight,
        zone=price.zone,
        weight_class_grams=price.weight_class_grams,
        fee=price.fee,
        cod_amount=_cod_amount(dossier, direction),
        expected_days=price.expected_days,
        currency=price.currency,
    )


# --- Booking -----------------------------------------------------------------------------


def order_number(dossier: Dossier, booking: DeliveryBooking) -> str:
    """The carrier's idempotency key: dossier code + booking id (+ revision after a change)."""
    base = f"{dossier.code}-{booking.pk}"
    return base if booking.revision == 1 else f"{base}-r{booking.revision}"


def _copy_address(booking: DeliveryBooking, address: SavedAddress) -> None:
    booking.address = address
    booking.recipient_name = address.recipient_name
    booking.phone = address.phone
    booking.street = address.street
    booking.commune_code = address.commune_code
    booking.province_code = address.province_code


def _apply_quote(booking: DeliveryBooking, quote: Quote) -> None:
    booking.carrier = quote.carrier
    booking.weight_grams = quote.weight_grams
    booking.zone = quote.zone
    booking.fee = quote.fee
    booking.cod_amount = quote.cod_amount
    booking.expected_days = quote.expected_days


def _defer_send(booking: DeliveryBooking) -> None:
    defer(
        "postal.send_booking",
        lock=f"postal-booking-{booking.pk}",
        booking_id=booking.pk,
        revision=booking.revision,
    )


def _booking_event_data(booking: DeliveryBooking, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "booking_id": booking.pk,
        "direction": booking.direction,
        "carrier": booking.carrier,
        "waybill": booking.waybill,
        "status": booking.status,
        "commune_code": booking.commune_code,
        "province_code": booking.province_code,
    }
    data.update(extra)
    return data


def _already_booked(booking_id: int | None) -> Conflict:
    return Conflict(
        "already_booked",
        _("A delivery is already booked for this dossier."),
        details={"booking_id": booking_id},
    )


def book_delivery(
    user: User, dossier_id: uuid.UUID | str, *, direction: str, address_id: uuid.UUID
) -> DeliveryBooking:
    """Book the result's delivery (or the paper dossier's pickup) to/from the user's
    saved address `address_id` (404 if it is not theirs, or deleted meanwhile).

    The carrier order is created by a job deferred in this transaction; until it
    runs, the booking is `pending`.
    """
    with transaction.atomic():
        dossier = access_dossier(user, dossier_id, for_update=True)
        address = access_address(user, address_id, for_update=True)
        _check_direction_allowed(dossier, direction)
        open_statuses = (
            RESULT_OPEN_STATUSES if direction == Direction.RESULT else PICKUP_OPEN_STATUSES
        )
        if dossier.status not in open_statuses or not dossier.code:
            raise Conflict(
                "dossier_not_eligible",
                _("A delivery cannot be booked for this dossier in its current state."),
            )
        existing = DeliveryBooking.objects.filter(
            dossier=dossier, direction=direction, status__in=DeliveryBooking.ACTIVE_STATUSES
        ).first()
        if existing is not None:
            raise _already_booked(existing.pk)
        quote = compute_quote(dossier, address, direction)
        booking = DeliveryBooking(
            dossier=dossier,
            direction=direction,
            status=Status.PENDING,
            order_number=f"new-{uuid.uuid4().hex}",
            booked_by=user,
        )
        _copy_address(booking, address)
        _apply_quote(booking, quote)
        try:
            with transaction.atomic():
                booking.save()
        except IntegrityError as exc:  # the partial unique index: the database's word
            raise _already_booked(None) from exc
        booking.order_number = order_number(dossier, booking)
        booking.save(update_fields=["order_number"])
        record_event(
            dossier,
            type=EventType.DELIVERY_BOOKED,
            actor_type=DossierEvent.Actor.CITIZEN,
            actor_user=user,
            data=_booking_event_data(
                booking,
                fee=booking.fee,
                cod_amount=booking.cod_amount,
                expected_days=booking.expected_days,
            ),
        )
        _defer_send(booking)
    return booking


def _require_may_change(user: User, dossier: Dossier, booking: DeliveryBooking) -> None:
    """Whoever booked, the applicant, and the organisation's owners and admins may cancel
    or re-address a booking; the organisation's other members see it, but may not."""
    require_may_act_for(
        user,
        dossier,
        code="not_booker",
        message=_(
            "Only whoever booked this delivery, the dossier's applicant and the "
            "organisation's owners and administrators can cancel it or change its address."
        ),
        made_by_id=booking.booked_by_id,
    )


def _lock_booking(user: User, booking_id: int) -> tuple[Dossier, DeliveryBooking]:
    """The booking (404 unless `user` sees it), locked after its dossier, for someone
    who may change it (403 `not_booker` otherwise)."""
    booking = access_booking(user, booking_id)
    dossier = access_dossier(user, booking.dossier_id, for_update=True)
    locked = DeliveryBooking.objects.select_for_update().get(pk=booking.pk)
    _require_may_change(user, dossier, locked)
    return dossier, locked


def _lock_booking_and_address(
    user: User, booking_id: int, address_id: uuid.UUID
) -> tuple[Dossier, DeliveryBooking, SavedAddress]:
    """`_lock_booking`, with the user's own saved address locked in between (lock order;
    404 for anyone else's address)."""
    booking = access_booking(user, booking_id)
    dossier = access_dossier(user, booking.dossier_id, for_update=True)
    address = access_address(user, address_id, for_update=True)
    locked = DeliveryBooking.objects.select_for_update().get(pk=booking.pk)
    _require_may_change(user, dossier, locked)
    return dossier, locked, address


def _check_changeable(booking: DeliveryBooking) -> None:
    if booking.status in DeliveryBooking.CHANGEABLE_STATUSES:
        return
    if RANK.get(booking.status, -1) >= RANK[Status.PICKED_UP]:
        raise Conflict(
            "already_picked_up",
            _("The carrier already has the parcel: it can no longer be changed or cancelled."),
        )
    raise Conflict("booking_not_active", _("This booking is no longer active."))


def cancel_booking(user: User, booking_id: int) -> DeliveryBooking:
    with transaction.atomic():
        dossier, booking = _lock_booking(user, booking_id)
        _check_changeable(booking)
        waybill = booking.waybill
        booking.status = Status.CANCELLED
        booking.save(update_fields=["status", "updated_at"])
        record_event(
            dossier,
            type=EventType.DELIVERY_CANCELLED,
            actor_type=DossierEvent.Actor.CITIZEN,
            actor_user=user,
            data=_booking_event_data(booking, reason="cancelled_by_citizen"),
        )
        if waybill:
            _defer_cancel(booking.carrier, waybill)
        # A pending booking has no order yet; its job sees the cancellation and stops
        # (or cancels the order it just created).
    return booking


def change_booking_address(user: User, booking_id: int, address_id: uuid.UUID) -> DeliveryBooking:
    """A new address before pickup: the old carrier order is cancelled, a new one made.

    The booking now carries `user`'s address, so `user` becomes whoever booked it: they
    (and the applicant) see the recipient in full, the previous booker no longer does.
    """
    with transaction.atomic():
        dossier, booking, address = _lock_booking_and_address(user, booking_id, address_id)
        _check_changeable(booking)
        quote = compute_quote(dossier, address, booking.direction)
        old_waybill = booking.waybill
        booking.booked_by = user
        _copy_address(booking, address)
        _apply_quote(booking, quote)
        booking.revision += 1
        booking.order_number = order_number(dossier, booking)
        booking.waybill = ""
        booking.status = Status.PENDING
        booking.last_error = ""
        booking.save()
        record_event(
            dossier,
            type=EventType.DELIVERY_BOOKED,
            actor_type=DossierEvent.Actor.CITIZEN,
            actor_user=user,
            data=_booking_event_data(
                booking,
                fee=booking.fee,
                cod_amount=booking.cod_amount,
                expected_days=booking.expected_days,
                address_changed=True,
            ),
        )
        if old_waybill:
            _defer_cancel(booking.carrier, old_waybill)
        _defer_send(booking)
    return booking


def _defer_cancel(carrier: str, waybill: str) -> None:
    defer("postal.cancel_carrier_order", carrier=carrier, waybill=waybill)


def _defer_collection(booking: DeliveryBooking) -> None:
    defer("postal.request_collection", booking_id=booking.pk, waybill=booking.waybill)


# --- The carrier side (run by jobs) ------------------------------------------------------------


def _order_for(booking: DeliveryBooking) -> Order:
    dossier = booking.dossier
    agency = dossier.agency
    citizen = Party(
        name=booking.recipient_name,
        phone=booking.phone,
        street=booking.street,
        commune_code=booking.commune_code,
        province_code=booking.province_code,
    )
    office = Party(
        name=agency.name,
        phone="",
        street=agency.name,
        commune_code=agency.commune_code,
        province_code=agency.province_code,
    )
    sender, receiver = (
        (office, citizen) if booking.direction == Direction.RESULT else (citizen, office)
    )
    return Order(
        order_number=booking.order_number,
        reference=dossier.code or "",
        sender=sender,
        receiver=receiver,
        cod_amount=booking.cod_amount,
        postage=booking.fee,
        weight_grams=booking.weight_grams,
        note=str(booking.direction),
    )


def send_booking_to_carrier(booking_id: int, revision: int) -> str:
    """Create the carrier order of a pending booking; the job's body.

    Never two orders: the carrier creates-or-gets by order number (which changes
    only with a new revision), and the state is checked again under lock before
    the waybill is recorded. Raises CarrierUnavailable for the job to retry.
    """
    booking = (
        DeliveryBooking.objects.select_related("dossier__agency").filter(pk=booking_id).first()
    )
    if booking is None or booking.revision != revision or booking.status != Status.PENDING:
        return "skipped"
    try:
        created = get_adapter(booking.carrier).create_order(_order_for(booking))
    except CarrierUnavailable as exc:
        DeliveryBooking.objects.filter(pk=booking_id, revision=revision).update(
            last_error=exc.code[:60]
        )
        raise
    except CarrierRejected as exc:
        reject_booking(booking_id, revision, exc.code)
        return "rejected"
    return record_carrier_order(booking_id, revision, created.waybill)


def record_carrier_order(booking_id: int, revision: int, waybill: str) -> str:
    with transaction.atomic():
        dossier_id = DeliveryBooking.objects.values_list("dossier_id", flat=True).get(pk=booking_id)
        dossier = Dossier.objects.select_for_update().get(pk=dossier_id)
        booking = DeliveryBooking.objects.select_for_update().get(pk=booking_id)
        if booking.revision != revision or booking.status in (Status.CANCELLED, Status.REJECTED):
            # Cancelled or re-addressed while we were talking to the carrier.
            _defer_cancel(booking.carrier, waybill)
            return "orphan_cancelled"
        if booking.waybill and booking.waybill != waybill:
            logger.error("booking %s: carrier returned a second waybill", booking_id)
            return "conflict"
        booking.waybill = waybill
        booking.last_error = ""
        if booking.status == Status.PENDING:
            booking.status = Status.BOOKED
            if (
                booking.direction == Direction.RESULT
                and dossier.status == Dossier.Status.RESULT_READY
            ):
                booking.status = Status.READY_FOR_PICKUP
                _defer_collection(booking)
        booking.save()
    return str(booking.status)


def reject_booking(booking_id: int, revision: int, code: str) -> None:
    """The carrier refused the order for good: the booking ends, the citizen is told."""
    with transaction.atomic():
        dossier_id = DeliveryBooking.objects.values_list("dossier_id", flat=True).get(pk=booking_id)
        dossier = Dossier.objects.select_for_update().get(pk=dossier_id)
        booking = DeliveryBooking.objects.select_for_update().get(pk=booking_id)
        if booking.revision != revision or booking.status != Status.PENDING:
            return
        booking.status = Status.REJECTED
        booking.last_error = code[:60]
        booking.save()
        record_event(
            dossier,
            type=EventType.DELIVERY_CANCELLED,
            actor_type=DossierEvent.Actor.CARRIER,
            actor_label=booking.carrier,
            data=_booking_event_data(booking, reason=code),
        )


def hand_over_to_carrier(dossier_id: uuid.UUID | str) -> DeliveryBooking | None:
    """The result is ready (dossier.completed): the booked carrier comes to collect it.

    A booking still `pending` is left alone: its job sees the ready result when it
    records the waybill and asks for collection then.
    """
    with transaction.atomic():
        dossier = Dossier.objects.select_for_update().filter(pk=dossier_id).first()
        if dossier is None or dossier.status != Dossier.Status.RESULT_READY:
            return None
        booking = (
            DeliveryBooking.objects.select_for_update()
            .filter(dossier=dossier, direction=Direction.RESULT, status=Status.BOOKED)
            .first()
        )
        if booking is None:
            return None
        booking.status = Status.READY_FOR_PICKUP
        booking.save(update_fields=["status", "updated_at"])
        _defer_collection(booking)
    return booking


def cancel_bookings_of_closed_dossier(dossier_id: uuid.UUID | str, reason: str) -> int:
    """The dossier was withdrawn, refused or stopped: bookings not yet collected end."""
    with transaction.atomic():
        dossier = Dossier.objects.select_for_update().filter(pk=dossier_id).first()
        if dossier is None:
            return 0
        bookings = list(
            DeliveryBooking.objects.select_for_update().filter(
                dossier=dossier, status__in=DeliveryBooking.CHANGEABLE_STATUSES
            )
        )
        for booking in bookings:
            booking.status = Status.CANCELLED
            booking.save(update_fields=["status", "updated_at"])
            record_event(
                dossier,
                type=EventType.DELIVERY_CANCELLED,
                actor_type=DossierEvent.Actor.SYSTEM,
                data=_booking_event_data(booking, reason=reason),
            )
            if booking.waybill:
                _defer_cancel(booking.carrier, booking.waybill)
    return len(bookings)


# --- Webhook ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarrierUpdate:
    message_id: str
    order_number: str
    waybill: str
    status: str
    occurred_at: dt.datetime
    location: str
    payload: dict[str, Any]


def _advances(booking: DeliveryBooking, status: str, occurred_at: dt.datetime) -> bool:
    if booking.status in FINAL_STATUSES:
        return False
    new_rank, current_rank = RANK[status], RANK[booking.status]
    if new_rank != current_rank:
        return new_rank > current_rank
    # Out for delivery <-> failed attempt (several attempts): the newer report wins.
    return status != booking.status and (
        booking.carrier_status_at is None or occurred_at > booking.carrier_status_at
    )


def apply_carrier_update(carrier: str, update: CarrierUpdate) -> tuple[str, int | None]:
    """Record one webhook message; move the booking forward and log a dossier event.

    The same message id twice changes nothing and gets the same answer.
    Returns (outcome, booking id).
    """
    known = CarrierMessage.objects.filter(carrier=carrier, message_id=update.message_id).first()
    if known is not None:
        return known.outcome, known.booking_id
    booking = (
        DeliveryBooking.objects.filter(carrier=carrier, order_number=update.order_number).first()
        if update.order_number
        else None
    )
    if booking is None and update.waybill:
        booking = DeliveryBooking.objects.filter(carrier=carrier, waybill=update.waybill).first()
    with transaction.atomic():
        dossier = None
        if booking is not None:
            dossier = Dossier.objects.select_for_update().get(pk=booking.dossier_id)
            booking = DeliveryBooking.objects.select_for_update().get(pk=booking.pk)
        message = CarrierMessage(
            carrier=carrier,
            message_id=update.message_id,
            booking=booking,
            status=update.status,
            occurred_at=update.occurred_at,
            payload=update.payload,
            outcome=CarrierMessage.Outcome.UNKNOWN_ORDER,
        )
        try:
            with transaction.atomic():
                message.save()
        except IntegrityError:
            # A twin of this message won the race: answer what it answered.
            twin = CarrierMessage.objects.get(carrier=carrier, message_id=update.message_id)
            return twin.outcome, twin.booking_id
        if booking is None or dossier is None:
            logger.warning("carrier %s: message for an unknown order", carrier)
            return message.outcome, None
        if not _advances(booking, update.status, update.occurred_at):
            message.outcome = CarrierMessage.Outcome.STALE
            message.save(update_fields=["outcome"])
            return message.outcome, booking.pk
        booking.status = update.status
        booking.carrier_status_at = update.occurred_at
        if update.waybill and not booking.waybill:
            booking.waybill = update.waybill
        booking.save()
        message.outcome = CarrierMessage.Outcome.APPLIED
        message.save(update_fields=["outcome"])
        record_event(
            dossier,
            type=CARRIER_EVENTS[update.status],
            actor_type=DossierEvent.Actor.CARRIER,
            actor_label=carrier,
            data=_booking_event_data(
                booking,
                occurred_at=rfc3339(update.occurred_at),
                location=update.location,
                message_id=update.message_id,
            ),
        )
    return message.outcome, booking.pk
