"""Who may see which address and booking: 404 for anyone else."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from auth.models import User
from backend.errors import NotFound
from dossiers.access import may_act_for, visible_dossiers
from postal.models import DeliveryBooking, SavedAddress


def access_address(
    user: User, address_id: uuid.UUID | str, *, for_update: bool = False
) -> SavedAddress:
    """One of the user's own saved addresses.

    With `for_update`, the row is locked until the transaction ends (call it inside
    `transaction.atomic()`): whatever writes the address, or a booking that refers to
    it, reads it this way, so the address cannot be deleted under it.
    """
    try:
        key = uuid.UUID(str(address_id))
    except ValueError as exc:
        raise NotFound() from exc
    queryset = SavedAddress.objects.filter(user=user, pk=key)
    if for_update:
        queryset = queryset.select_for_update()
    address = queryset.first()
    if address is None:
        raise NotFound()
    return address


def visible_bookings(user: User) -> QuerySet[DeliveryBooking]:
    """Bookings of the dossiers the user may see (applicant or organisation member)."""
    return DeliveryBooking.objects.filter(dossier__in=visible_dossiers(user).values("pk"))


def shows_recipient(user: User, booking: DeliveryBooking) -> bool:
    """Whether `user` sees the booking's recipient in full (phone and street).

    The recipient is usually someone's home: only whoever booked it and the dossier's
    applicant see it. Other members of the dossier's organisation, owners and admins
    included, see it as the member list shows a colleague: the phone masked and no
    street (managing an organisation never opens its members' contact details).
    `booking.dossier` should be loaded with it (`access_booking` and the list do).
    """
    return user.pk in (booking.booked_by_id, booking.dossier.applicant_id)


def may_change(user: User, booking: DeliveryBooking) -> bool:
    """Whether `user` may cancel the booking or change its address now: still before
    pickup, and they booked it, are the dossier's applicant, or an owner or admin of its
    organisation (`postal.actions` refuses anyone else with 403 `not_booker`).

    `booking.dossier` should be the dossier as read for `user` (`access_booking` loads
    it; the list sets the one it checked on every booking of its page): the caller's
    role in the organisation is read once per instance, not once per booking.
    """
    return booking.status in DeliveryBooking.CHANGEABLE_STATUSES and may_act_for(
        user, booking.dossier, made_by_id=booking.booked_by_id
    )


def access_booking(user: User, booking_id: int) -> DeliveryBooking:
    booking = visible_bookings(user).filter(pk=booking_id).select_related("dossier").first()
    if booking is None:
        raise NotFound()
    return booking
