"""Which devices and inbox entries a user may touch: only their own (404 otherwise)."""

from __future__ import annotations

from auth.models import User
from backend.errors import NotFound
from notifications.models import Device, Notification


def access_device(user: User, device_id: int) -> Device:
    device = Device.objects.filter(pk=device_id, user=user, active=True).first()
    if device is None:
        raise NotFound()
    return device


def access_notification(user: User, notification_id: int) -> Notification:
    notification = Notification.objects.filter(pk=notification_id, user=user).first()
    if notification is None:
        raise NotFound()
    return notification
