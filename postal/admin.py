from django.contrib import admin

from postal.models import CarrierMessage, DeliveryBooking, SavedAddress


@admin.register(SavedAddress)
class SavedAddressAdmin(admin.ModelAdmin):
    list_display = ("recipient_name", "commune_code", "province_code", "user", "created_at")
    search_fields = ("recipient_name", "phone")
    raw_id_fields = ("user",)


@admin.register(DeliveryBooking)
class DeliveryBookingAdmin(admin.ModelAdmin):
    list_display = ("order_number", "direction", "carrier", "status", "waybill", "last_error")
    list_filter = ("status", "direction", "carrier")
    search_fields = ("order_number", "waybill")
    raw_id_fields = ("dossier", "address", "booked_by")
    readonly_fields = ("created_at", "updated_at")


@admin.register(CarrierMessage)
class CarrierMessageAdmin(admin.ModelAdmin):
    list_display = ("carrier", "message_id", "status", "outcome", "occurred_at", "received_at")
    list_filter = ("carrier", "outcome", "status")
    search_fields = ("message_id",)
    raw_id_fields = ("booking",)

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # the carrier's word, kept as received
