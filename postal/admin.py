"""Saved addresses, bookings and carrier messages in the admin.

Agency officers see only the bookings (and their carrier messages) of the dossiers
they handle (`dossiers.access.officer_rows`), and no saved address: a booking
carries its own copy of the address the parcel goes to, which is what an officer
needs; the citizen's address book (addresses never sent anywhere, or changed since)
is not theirs to read. Bookings are read-only here: every change goes through
`postal.actions`, which writes the event and the audit trail.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from auth.models import User
from dossiers.access import officer_rows
from postal.models import CarrierMessage, DeliveryBooking, SavedAddress


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


@admin.register(SavedAddress)
class SavedAddressAdmin(admin.ModelAdmin):
    list_display = ("recipient_name", "commune_code", "province_code", "user", "created_at")
    search_fields = ("recipient_name", "phone")
    raw_id_fields = ("user",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[SavedAddress]:
        queryset = super().get_queryset(request)
        return queryset if _user(request).is_superuser else queryset.none()


@admin.register(DeliveryBooking)
class DeliveryBookingAdmin(admin.ModelAdmin):
    list_display = ("order_number", "direction", "carrier", "status", "waybill", "last_error")
    list_filter = ("status", "direction", "carrier")
    search_fields = ("order_number", "waybill")
    raw_id_fields = ("dossier", "address", "booked_by")

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeliveryBooking]:
        return officer_rows(_user(request), super().get_queryset(request), "dossier")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CarrierMessage)
class CarrierMessageAdmin(admin.ModelAdmin):
    list_display = ("carrier", "message_id", "status", "outcome", "occurred_at", "received_at")
    list_filter = ("carrier", "outcome", "status")
    search_fields = ("message_id",)
    raw_id_fields = ("booking",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[CarrierMessage]:
        return officer_rows(_user(request), super().get_queryset(request), "booking__dossier")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the carrier's word, kept as received
