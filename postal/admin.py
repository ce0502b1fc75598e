"""Saved addresses, bookings and carrier messages in the admin.

Agency officers see only the bookings (and their carrier messages) of the dossiers
they handle (`dossiers.access.officer_rows`), and no saved address: a booking
carries its own copy of the address the parcel goes to, which is what an officer
needs; the citizen's address book (addresses never sent anywhere, or changed since)
is not theirs to read. Support staff (`dossiers.admin_scope`) see every booking, to
answer "where is my parcel": its status, carrier, waybill and the commune it goes
to, with the recipient's name and phone masked as the support look-up masks them and
the street not shown; each booking they open is an audited look-up of the dossier's
applicant, and a phone number finds bookings only written in full (audited too).
Staff other than superusers find a dossier's bookings only with its whole code
(support staff: an audited look-up), and by order number, which carries the code, only
with the whole number.
Bookings, saved addresses and carrier messages are read-only here, for everyone: every
change goes through `postal.actions`, which writes the event and the audit trail. Each
booking, saved address or carrier message a superuser opens, and each of their searches
of them, is an audited look-up too.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from auth.admin_roles import (
    AuditedAccountViews,
    AuditedSuperuserSearch,
    PhoneSearch,
    ReadOnlyAdmin,
    is_superuser,
)
from auth.masked_accounts import mask_name
from auth.models import User
from auth.phone import mask_phone
from dossiers.access import officer_rows
from dossiers.admin_scope import OfficerOrSupportAdmin
from postal.models import CarrierMessage, DeliveryBooking, SavedAddress


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


@admin.register(SavedAddress)
class SavedAddressAdmin(AuditedAccountViews, AuditedSuperuserSearch, PhoneSearch, ReadOnlyAdmin):
    """A citizen's address book: superusers only, read-only (the citizen changes it
    through `postal.actions`), each address opened and each search an audited look-up."""

    list_display = ("recipient_name", "commune_code", "province_code", "user", "created_at")
    search_fields = ("recipient_name", "phone")
    search_help_text = _(
        "Any part of the recipient's name or phone number (+84…), a whole number also as "
        "people write it (0912 345 678). Each search is audited."
    )
    raw_id_fields = ("user",)
    account_paths = ("user",)
    audit_by = "saved_address"

    def get_queryset(self, request: HttpRequest) -> QuerySet[SavedAddress]:
        queryset = super().get_queryset(request)
        return queryset if _user(request).is_superuser else queryset.none()


@admin.register(DeliveryBooking)
class DeliveryBookingAdmin(OfficerOrSupportAdmin, ReadOnlyAdmin):
    list_display = ("order_number", "direction", "carrier", "status", "waybill", "last_error")
    list_filter = ("status", "direction", "carrier")
    search_fields = ("order_number", "waybill")
    searches_by_dossier_code = True
    whole_value_search_fields = ("order_number",)
    search_help_text = _(
        "Order number, waybill, dossier code, or the applicant's phone number only whole. "
        "Superusers: any part of the others, each search audited. Other staff: any part "
        "of a waybill, an order number (it carries the code) or a code only whole "
        "(support staff: an audited look-up, as by phone)."
    )
    raw_id_fields = ("dossier", "address", "booked_by")
    account_paths = ("dossier__applicant",)
    audit_by = "delivery_booking"
    masked_fields = {
        "recipient_name": "masked_recipient_name",
        "phone": "masked_phone",
        "street": "masked_street",
        # The saved address and the account shown by name would tell the rest.
        "address": "masked_address",
        "booked_by": "masked_booked_by",
    }

    def masks_fields(self, request: HttpRequest) -> bool:
        # An officer ships the parcel: the address whole. Support answers about it.
        return self.reads_as_support(request)

    @admin.display(description=_("recipient"))
    def masked_recipient_name(self, obj: DeliveryBooking) -> str:
        return mask_name(obj.recipient_name)

    @admin.display(description=_("phone number"))
    def masked_phone(self, obj: DeliveryBooking) -> str:
        return mask_phone(obj.phone)

    @admin.display(description=_("street"))
    def masked_street(self, obj: DeliveryBooking) -> str:
        # Whether there is one is enough; the commune and province codes say where.
        return "•••" if obj.street else "—"

    @admin.display(description=_("saved address"))
    def masked_address(self, obj: DeliveryBooking) -> str:
        return "•••" if obj.address_id else "—"

    @admin.display(description=_("booked by"))
    def masked_booked_by(self, obj: DeliveryBooking) -> str:
        return mask_name(obj.booked_by.full_name) if obj.booked_by.full_name else "•••"


@admin.register(CarrierMessage)
class CarrierMessageAdmin(AuditedAccountViews, AuditedSuperuserSearch, ReadOnlyAdmin):
    """The carrier's word, kept as received (its payload may carry the recipient's
    phone): read-only for everyone; a superuser opening one is an audited look-up of
    the dossier's applicant, and each of their searches is audited (officers read and
    search their own dossiers' messages, unrecorded)."""

    list_display = ("carrier", "message_id", "status", "outcome", "occurred_at", "received_at")
    list_filter = ("carrier", "outcome", "status")
    search_fields = ("message_id",)
    search_help_text = _("Any part of the carrier's message id. A superuser's search is audited.")
    raw_id_fields = ("booking",)
    account_paths = ("booking__dossier__applicant",)
    audit_by = "carrier_message"

    def audits_views(self, request: HttpRequest) -> bool:
        return is_superuser(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[CarrierMessage]:
        return officer_rows(_user(request), super().get_queryset(request), "booking__dossier")
