"""Support tools: devices, inbox entries and every delivery attempt, plus test pushes.

"I get no notifications" is the most common push support request: staff find the
user's devices here, send a test push, and read the delivery rows it produced.

Agency officers see the notifications (and their deliveries) about the dossiers
they handle (`dossiers.access.officer_rows`), and the devices and preferences of
the people those notifications went to: who they may help with "I get no
notifications" about one of their dossiers. Notifications about no dossier (tests,
announcements) are for superusers.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from auth.models import User
from dossiers.access import officer_rows
from notifications.actions import send_test_push
from notifications.models import Delivery, Device, Notification, Preference


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _recipients(request: HttpRequest) -> QuerySet[Notification]:
    """The notifications the signed-in officer may read (all for a superuser)."""
    return officer_rows(_user(request), Notification.objects.all(), "dossier")


def _officer_users(request: HttpRequest, rows: QuerySet[Any]) -> QuerySet[Any]:
    """`rows` of users who were notified about one of the officer's dossiers."""
    if _user(request).is_superuser:
        return rows
    return rows.filter(user__in=_recipients(request).values("user_id"))


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = (
        "device",
        "state",
        "attempts",
        "last_attempt_at",
        "next_attempt_at",
        "fcm_message_id",
        "error_code",
        "error_message",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "platform",
        "app_version",
        "masked_token",
        "active",
        "deactivated_reason",
        "last_seen_at",
    )
    list_filter = ("platform", "active", "deactivated_reason")
    search_fields = ("user__phone", "installation_id")
    raw_id_fields = ("user", "session")
    exclude = ("token",)  # a push credential: never shown, even to staff
    readonly_fields = (
        "masked_token",
        "user",
        "session",
        "platform",
        "app_version",
        "locale",
        "installation_id",
        "created_at",
        "last_seen_at",
        "deactivated_at",
        "deactivated_reason",
    )
    actions = ("send_test_push_action",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Device]:
        return _officer_users(request, super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send a test push to the selected devices", permissions=["change"])
    def send_test_push_action(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        # Checked again here: an action runs for whoever reaches the change list.
        if not self.has_change_permission(request):
            raise PermissionDenied
        staff = request.user
        sent = send_test_push(list(queryset), staff=staff)  # type: ignore[arg-type]
        if not sent:
            self.message_user(request, "None of the selected devices is active.", messages.WARNING)
            return
        links = ", ".join(f"#{notification.pk}" for notification in sent)
        self.message_user(
            request,
            f"Test push queued ({links}); open the notification to see its deliveries.",
            messages.SUCCESS,
        )


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "type", "urgent", "title", "created_at", "read_at", "sms_status")
    list_filter = ("type", "category", "urgent", "sms_status")
    search_fields = ("user__phone", "dossier__code")
    raw_id_fields = ("user", "event", "dossier")
    readonly_fields = ("created_at", "sms_sent_at")
    inlines = (DeliveryInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notification]:
        return officer_rows(_user(request), super().get_queryset(request), "dossier")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "notification",
        "device",
        "state",
        "attempts",
        "error_code",
        "last_attempt_at",
        "next_attempt_at",
    )
    list_filter = ("state", "error_code")
    search_fields = ("notification__user__phone",)
    raw_id_fields = ("notification", "device")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return officer_rows(_user(request), super().get_queryset(request), "notification__dossier")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "quiet_hours_enabled", "quiet_start", "quiet_end", "updated_at")
    raw_id_fields = ("user",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Preference]:
        return _officer_users(request, super().get_queryset(request))
