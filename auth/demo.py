"""Demo accounts for `make run` (never loaded in production).

The accounts are data, in `auth/demo_accounts.json`: a published demo password
and one entry per account (`role` names it in the summary).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from auth.models import User

ACCOUNTS_FILE = Path(__file__).with_name("demo_accounts.json")


@cache
def accounts() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ACCOUNTS_FILE.read_text(encoding="utf-8"))
    return data


def load() -> str:
    if settings.PRODUCTION:
        raise ImproperlyConfigured("Demo accounts are never loaded in production.")
    data = accounts()
    now = timezone.now()
    states = {True: "created", False: "present"}
    summary = []
    for account in data["accounts"]:
        user, created = User.objects.get_or_create(
            phone=account["phone"],
            defaults={
                "full_name": account["full_name"],
                "phone_verified_at": now,
                "verification_level": User.Level.PHONE,
                "is_staff": account["is_staff"],
                "is_superuser": account["is_superuser"],
            },
        )
        if created:
            user.set_password(data["password"])
            user.save(update_fields=["password"])
        summary.append(f"{account['role']} {states[created]}")
    return ", ".join(summary)
