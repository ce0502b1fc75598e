"""Support tools: devices, inbox entries and every delivery attempt, plus test pushes.

"I get no notifications" is the most common push support request: staff find the
user's devices here, send a test push, and read the delivery rows it produced.

Who sees which rows (`dossiers.admin_scope`): agency officers the notifications
(and their deliveries) about the dossiers they handle (`dossiers.access.officer_rows`),
and the devices and preferences of the people those notifications went to: who they
may help with "I get no notifications" about one of their dossiers; notifications
about no dossier (tests, announcements) are not theirs. Support staff see every row
(on the support permission alone), read-only (a test push needs the change permission
on devices), each row they open an audited look-up of the citizen, and find a
citizen's rows by the whole phone number only (audited too); officers too find their
rows by the whole number only. Staff other than superusers find a dossier's
notifications and deliveries only with its whole code (support staff: an audited
look-up). Superusers see everything, each row they open and each search an audited
look-up too. Nobody, superusers included, adds, edits or deletes a row here: only
`notifications.actions` writes them (a test push is one, in the audit trail).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from auth.admin_roles import ReadOnlyAdmin, support_context
from auth.models import User
from dossiers.access import officer_rows
from dossiers.admin_scope import OfficerOrSupportAdmin
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
class DeviceAdmin(OfficerOrSupportAdmin, ReadOnlyAdmin):
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
    search_help_text = _(
        "The account's phone number or the installation id. Superusers: any part of "
        "either, each search audited. Other staff: any part of the installation id, a "
        "phone number only whole (support staff: an audited look-up)."
    )
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
    account_paths = ("user",)
    audit_by = "device"

    def officer_queryset(self, request: HttpRequest, rows: QuerySet[Any]) -> QuerySet[Any]:
        return _officer_users(request, rows)

    def has_test_push_permission(self, request: HttpRequest) -> bool:
        # Support's read-only view edits no device, but may test them: "view" is not enough.
        return request.user.has_perm("notifications.change_device")

    @admin.action(description="Send a test push to the selected devices", permissions=["test_push"])
    def send_test_push_action(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        # Checked again here: an action runs for whoever reaches the change list.
        if not self.has_test_push_permission(request):
            raise PermissionDenied
        sent = send_test_push(
            list(queryset), staff=_user(request), context=support_context(request)
        )
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
class NotificationAdmin(OfficerOrSupportAdmin, ReadOnlyAdmin):
    list_display = ("id", "user", "type", "urgent", "title", "created_at", "read_at", "sms_status")
    list_filter = ("type", "category", "urgent", "sms_status")
    search_fields = ("user__phone",)
    searches_by_dossier_code = True
    search_help_text = _(
        "The citizen's phone number or a dossier's code. Superusers: any part of either, "
        "each search audited. Other staff: only the whole number or code (support staff: "
        "an audited look-up); a part finds nothing."
    )
    raw_id_fields = ("user", "event", "dossier")
    readonly_fields = ("created_at", "sms_sent_at")
    inlines = (DeliveryInline,)
    account_paths = ("user",)
    audit_by = "notification"


@admin.register(Delivery)
class DeliveryAdmin(OfficerOrSupportAdmin, ReadOnlyAdmin):
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
    searches_by_dossier_code = True
    search_help_text = _(
        "The citizen's phone number or a dossier's code. Superusers: any part of either, "
        "each search audited. Other staff: only the whole number or code (support staff: "
        "an audited look-up); a part finds nothing."
    )
    raw_id_fields = ("notification", "device")
    dossier_path = "notification__dossier"
    account_paths = ("notification__user",)
    audit_by = "delivery"


@admin.register(Preference)
class PreferenceAdmin(OfficerOrSupportAdmin, ReadOnlyAdmin):
    list_display = ("user", "quiet_hours_enabled", "quiet_start", "quiet_end", "updated_at")
    raw_id_fields = ("user",)
    account_paths = ("user",)
    audit_by = "preference"

    def officer_queryset(self, request: HttpRequest, rows: QuerySet[Any]) -> QuerySet[Any]:
        return _officer_users(request, rows)
