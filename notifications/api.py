"""Devices, the inbox and notification preferences (mounted at /api/v1/)."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Field, Query, Router, Schema, Status
from pydantic import StrictBool, field_validator

from auth.bearer import bearer, current_session, current_user
from backend.errors import ErrorOut
from backend.idempotency import idempotent
from backend.pagination import PageParams, page_of, paginate
from notifications import actions
from notifications.access import access_device, access_notification
from notifications.models import Device, Notification, Preference

router = Router(auth=bearer, tags=["notifications"])

HH_MM = r"^([01]\d|2[0-3]):[0-5]\d$"


class DeviceRegistrationIn(Schema):
    token: str = Field(..., min_length=1, max_length=4096, description="FCM registration token")
    platform: Literal["android", "ios", "web"]
    app_version: str = Field("", max_length=32)
    locale: str = Field("", max_length=16, description="e.g. `vi-VN`")
    installation_id: str = Field(
        "",
        max_length=128,
        description="Stable per app install; defaults to the session's `device_id`.",
    )


class DeviceOut(Schema):
    id: int
    platform: str
    app_version: str
    locale: str
    installation_id: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    current: bool = Field(description="Registered by the session making this request")


class NotificationOut(Schema):
    id: int
    type: str
    category: str
    urgent: bool
    title: str
    body: str
    data: dict[str, str]
    dossier_id: uuid.UUID | None
    event_id: int | None
    created_at: dt.datetime
    read_at: dt.datetime | None


class InboxParams(PageParams):
    unread: bool | None = Field(None, description="`true`: only unread entries")


class UnreadCountOut(Schema):
    unread: int


class ReadAllIn(Schema):
    up_to_id: int | None = Field(
        None,
        strict=True,
        description="Only entries with an id up to this one (the newest the user saw)",
    )


class ReadAllOut(Schema):
    marked: int
    unread: int


class PreferencesOut(Schema):
    status_changes: bool
    action_requests: bool = Field(description="Supplement and payment requests")
    delivery_updates: bool
    announcements: bool
    quiet_hours_enabled: bool
    quiet_start: str = Field(description="HH:MM local time")
    quiet_end: str = Field(description="HH:MM local time")
    timezone: str


class PreferencesIn(Schema):
    status_changes: StrictBool | None = None
    action_requests: StrictBool | None = None
    delivery_updates: StrictBool | None = None
    announcements: StrictBool | None = None
    quiet_hours_enabled: StrictBool | None = None
    quiet_start: str | None = Field(None, pattern=HH_MM)
    quiet_end: str | None = Field(None, pattern=HH_MM)
    timezone: str | None = Field(None, max_length=64, description="IANA name")

    @field_validator("timezone")
    @classmethod
    def known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in zoneinfo.available_timezones():
            raise ValueError(str(_("Unknown time zone.")))
        return value


def _device_out(request: HttpRequest, device: Device) -> DeviceOut:
    return DeviceOut(
        id=device.pk,
        platform=device.platform,
        app_version=device.app_version,
        locale=device.locale,
        installation_id=device.installation_id,
        created_at=device.created_at,
        last_seen_at=device.last_seen_at,
        current=device.session_id == current_session(request).pk,
    )


def _preferences_out(preference: Preference) -> PreferencesOut:
    return PreferencesOut(
        status_changes=preference.status_changes,
        action_requests=preference.action_requests,
        delivery_updates=preference.delivery_updates,
        announcements=preference.announcements,
        quiet_hours_enabled=preference.quiet_hours_enabled,
        quiet_start=preference.quiet_start.strftime("%H:%M"),
        quiet_end=preference.quiet_end.strftime("%H:%M"),
        timezone=preference.timezone,
    )


@router.post(
    "/devices",
    response={200: DeviceOut, 201: DeviceOut, 422: ErrorOut},
    summary="Register this device for push notifications (FCM token)",
)
@idempotent
def register_device(request: HttpRequest, payload: DeviceRegistrationIn) -> Status[DeviceOut]:
    """Register this installation's FCM token (201), or refresh it (200).

    Call on every app start and whenever FCM hands out a new token.
    """
    device, created = actions.register_device(
        current_user(request),
        current_session(request),
        token=payload.token,
        platform=payload.platform,
        app_version=payload.app_version,
        locale=payload.locale,
        installation_id=payload.installation_id,
    )
    return Status(201 if created else 200, _device_out(request, device))


@router.get("/devices", response=page_of(DeviceOut), summary="List my push devices")
def list_devices(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    """The signed-in user's devices that receive pushes."""
    queryset = Device.objects.filter(user=current_user(request), active=True)
    rows, next_cursor = paginate(queryset, params, ("-last_seen_at", "-id"))
    return {"items": [_device_out(request, row) for row in rows], "next_cursor": next_cursor}


@router.delete(
    "/devices/{device_id}",
    response={204: None, 404: ErrorOut},
    summary="Stop push notifications to a device",
)
def remove_device(request: HttpRequest, device_id: int) -> Status[None]:
    """Stop pushes to one of the user's devices."""
    actions.remove_device(access_device(current_user(request), device_id))
    return Status(204, None)


@router.get(
    "/notifications",
    response=page_of(NotificationOut),
    summary="List my notifications (inbox), newest first",
)
def list_notifications(request: HttpRequest, params: Query[InboxParams]) -> dict[str, Any]:
    """The inbox, newest first."""
    queryset = Notification.objects.filter(user=current_user(request))
    if params.unread is not None:
        queryset = queryset.filter(read_at__isnull=params.unread)
    rows, next_cursor = paginate(queryset, params, ("-created_at", "-id"))
    return {"items": rows, "next_cursor": next_cursor}


@router.get(
    "/notifications/unread-count", response=UnreadCountOut, summary="Count my unread notifications"
)
def unread_count(request: HttpRequest) -> UnreadCountOut:
    count = Notification.objects.filter(user=current_user(request), read_at__isnull=True).count()
    return UnreadCountOut(unread=count)


@router.post(
    "/notifications/read-all", response=ReadAllOut, summary="Mark all my notifications read"
)
def read_all(request: HttpRequest, payload: ReadAllIn) -> ReadAllOut:
    """Mark every unread entry read (or those up to `up_to_id`)."""
    user = current_user(request)
    marked = actions.mark_all_read(user, up_to_id=payload.up_to_id)
    unread = Notification.objects.filter(user=user, read_at__isnull=True).count()
    return ReadAllOut(marked=marked, unread=unread)


@router.post(
    "/notifications/{notification_id}/read",
    response={200: NotificationOut, 404: ErrorOut},
    summary="Mark one notification read",
)
def read_one(request: HttpRequest, notification_id: int) -> Notification:
    """Mark one entry read (again is fine)."""
    return actions.mark_read(access_notification(current_user(request), notification_id))


@router.get(
    "/notifications/preferences", response=PreferencesOut, summary="Get my notification preferences"
)
def get_preferences(request: HttpRequest) -> PreferencesOut:
    return _preferences_out(actions.preference_for(current_user(request)))


@router.patch(
    "/notifications/preferences",
    response={200: PreferencesOut, 422: ErrorOut},
    summary="Change my notification preferences (categories, quiet hours)",
)
def update_preferences(request: HttpRequest, payload: PreferencesIn) -> PreferencesOut:
    """Change some preferences; omitted fields keep their value."""
    changes: dict[str, Any] = payload.model_dump(exclude_none=True)
    for name in ("quiet_start", "quiet_end"):
        if name in changes:
            changes[name] = dt.time.fromisoformat(changes[name])
    return _preferences_out(actions.update_preferences(current_user(request), changes))
