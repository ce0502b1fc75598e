"""Devices (FCM tokens), inbox entries, push deliveries and preferences."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Category(models.TextChoices):
    """What a notification is about; users switch pushes on and off per category."""

    STATUS_CHANGES = "status_changes", _("Status changes")
    ACTION_REQUESTS = "action_requests", _("Supplement and payment requests")
    DELIVERY_UPDATES = "delivery_updates", _("Delivery updates")
    ANNOUNCEMENTS = "announcements", _("Announcements")


class Device(models.Model):
    """One app installation's FCM registration token, owned by one user at a time.

    A token is unique among active devices: when a phone changes hands the old
    owner's row is deactivated and the new owner gets a row of their own, so the
    delivery history of each stays readable.
    """

    class Platform(models.TextChoices):
        ANDROID = "android", "Android"
        IOS = "ios", "iOS"
        WEB = "web", "Web"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_devices"
    )
    session = models.ForeignKey(
        "accounts.DeviceSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="push_devices",
        help_text=_("The signed-in session that registered the token; ending it stops pushes."),
    )
    token = models.CharField(max_length=4096, help_text=_("FCM registration token."))
    platform = models.CharField(max_length=8, choices=Platform.choices)
    app_version = models.CharField(max_length=32, blank=True)
    locale = models.CharField(max_length=16, blank=True)
    installation_id = models.CharField(max_length=128)
    active = models.BooleanField(default=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivated_reason = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["token"], condition=Q(active=True), name="device_active_token_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "active"]),
            models.Index(fields=["last_seen_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.platform} …{self.token[-6:]} ({self.user_id})"

    @property
    def masked_token(self) -> str:
        return f"…{self.token[-8:]}" if self.token else ""


class Notification(models.Model):
    """One inbox entry of one user. Every push is a delivery of one of these."""

    class SmsStatus(models.TextChoices):
        NONE = "", pgettext_lazy("fallback SMS status", "Not needed")
        PENDING = "pending", pgettext_lazy("fallback SMS status", "Pending")
        SENDING = "sending", pgettext_lazy("fallback SMS status", "Sending")
        SENT = "sent", pgettext_lazy("fallback SMS status", "Sent")
        FAILED = "failed", pgettext_lazy("fallback SMS status", "Failed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.ForeignKey(
        "dossiers.DossierEvent",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    dossier = models.ForeignKey(
        "dossiers.Dossier",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    type = models.CharField(max_length=40, help_text=_("Event type, or `test` / `announcement`."))
    category = models.CharField(max_length=20, choices=Category.choices)
    urgent = models.BooleanField(default=False)
    title = models.CharField(max_length=200)
    body = models.TextField()
    data = models.JSONField(default=dict, help_text=_("Deep-link data; every value is a string."))
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    sms_status = models.CharField(
        max_length=8, choices=SmsStatus.choices, default=SmsStatus.NONE, blank=True
    )
    sms_text = models.CharField(max_length=320, blank=True, help_text=_("Fallback SMS text."))
    sms_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "event"],
                condition=Q(event__isnull=False),
                name="notification_once_per_user_event",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"]),
            models.Index(
                fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.type} → {self.user_id}"


class Delivery(models.Model):
    """One push of one notification to one device (GOV.UK Notify-style states)."""

    class State(models.TextChoices):
        CREATED = "created", pgettext_lazy("push delivery state", "Created")
        SENDING = "sending", pgettext_lazy("push delivery state", "Sending")
        DELIVERED = "delivered", pgettext_lazy("push delivery state", "Delivered to FCM")
        TEMPORARY_FAILURE = (
            "temporary-failure",
            pgettext_lazy("push delivery state", "Temporary failure"),
        )
        PERMANENT_FAILURE = (
            "permanent-failure",
            pgettext_lazy("push delivery state", "Permanent failure"),
        )

    CLAIMABLE = (State.CREATED, State.TEMPORARY_FAILURE)

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=17, choices=State.choices, default=State.CREATED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    fcm_message_id = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    # A send job's claim: rows it will send, not yet handed to FCM. Another job may
    # take them over once `claimed_until` has passed (the claiming worker died).
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "device"], name="delivery_once_per_device"
            ),
        ]
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"delivery {self.id} ({self.state})"


def _default_quiet_start() -> dt.time:
    return dt.time.fromisoformat(settings.NOTIFICATIONS_QUIET_START)


def _default_quiet_end() -> dt.time:
    return dt.time.fromisoformat(settings.NOTIFICATIONS_QUIET_END)


class Preference(models.Model):
    """Which categories a user gets pushes for, and their quiet hours.

    Turning a category off stops its pushes (and SMS fallbacks), never its inbox entries.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    status_changes = models.BooleanField(default=True)
    action_requests = models.BooleanField(default=True)
    delivery_updates = models.BooleanField(default=True)
    announcements = models.BooleanField(default=True)
    quiet_hours_enabled = models.BooleanField(default=True)
    quiet_start = models.TimeField(default=_default_quiet_start)
    quiet_end = models.TimeField(default=_default_quiet_end)
    timezone = models.CharField(max_length=64, default="Asia/Ho_Chi_Minh")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"

    def allows(self, category: str) -> bool:
        return bool(getattr(self, category, True))

    def _zone(self) -> zoneinfo.ZoneInfo:
        try:
            return zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")

    def in_quiet_hours(self, moment: dt.datetime) -> bool:
        if not self.quiet_hours_enabled or self.quiet_start == self.quiet_end:
            return False
        local = moment.astimezone(self._zone()).time()
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end

    def quiet_hours_end(self, moment: dt.datetime) -> dt.datetime | None:
        """When a non-urgent push due at `moment` may go: None means now."""
        if not self.in_quiet_hours(moment):
            return None
        zone = self._zone()
        local = moment.astimezone(zone)
        end = dt.datetime.combine(local.date(), self.quiet_end, tzinfo=zone)
        if end <= local:
            end = dt.datetime.combine(local.date() + dt.timedelta(days=1), self.quiet_end, zone)
        return end
