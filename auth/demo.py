"""Demo accounts for `make run` (never loaded in production)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from auth.models import User

DEMO_CITIZEN_PHONE = "+84912345678"
DEMO_STAFF_PHONE = "+84900000001"
# The published demo login of `make run`; load() refuses to run in production.
DEMO_PASSWORD = "demo-Passw0rd!"  # noqa: S105  # nosec B105 # demo login


def load() -> str:
    if settings.PRODUCTION:
        raise ImproperlyConfigured("Demo accounts are never loaded in production.")
    now = timezone.now()
    citizen, created = User.objects.get_or_create(
        phone=DEMO_CITIZEN_PHONE,
        defaults={
            "full_name": "Nguyễn Văn An",
            "phone_verified_at": now,
            "verification_level": User.Level.PHONE,
        },
    )
    if created:
        citizen.set_password(DEMO_PASSWORD)
        citizen.save(update_fields=["password"])
    staff, staff_created = User.objects.get_or_create(
        phone=DEMO_STAFF_PHONE,
        defaults={
            "full_name": "Trần Thị Bình (admin)",
            "phone_verified_at": now,
            "verification_level": User.Level.PHONE,
            "is_staff": True,
            "is_superuser": True,
        },
    )
    if staff_created:
        staff.set_password(DEMO_PASSWORD)
        staff.save(update_fields=["password"])
    states = {True: "created", False: "present"}
    return f"citizen {states[created]}, admin {states[staff_created]}"
