"""Support staff and citizens for the organisation and support tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from auth.models import RecoveryCode, User
from tests.conftest import ApiClient, make_user, sign_in

TOTP_CIPHERTEXT = "gAAAAABtotp-secret-ciphertext-for-tests"
RECOVERY_HASH = "pbkdf2_sha256$recovery-code-hash-for-tests"

SUPPORT_GROUP_PERMISSIONS = [
    ("accounts", "support_reset"),
    ("accounts", "view_user"),
    ("accounts", "view_supportreset"),
    ("accounts", "view_supportauditrecord"),
]


def support_group() -> Group:
    group, _ = Group.objects.get_or_create(name="Support")
    for app_label, codename in SUPPORT_GROUP_PERMISSIONS:
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return group


def make_staff(*, totp: bool = True, support: bool = True, **extra: Any) -> User:
    """A staff member; with `support`, in the Support group; with `totp`, TOTP enabled."""
    staff = make_user(full_name=extra.pop("full_name", "Phạm Văn Hỗ Trợ"), is_staff=True, **extra)
    if support:
        staff.groups.add(support_group())
    if totp:
        staff.totp_secret = TOTP_CIPHERTEXT
        staff.totp_confirmed_at = timezone.now()
        staff.save(update_fields=["totp_secret", "totp_confirmed_at"])
    return staff


def make_citizen(*, level: int = User.Level.PHONE, totp: bool = True, **extra: Any) -> User:
    """A citizen with TOTP enrolled and two unused recovery codes."""
    citizen = make_user(level=level, **extra)
    if totp:
        citizen.totp_secret = TOTP_CIPHERTEXT
        citizen.totp_confirmed_at = timezone.now()
        citizen.totp_last_step = 12345
        citizen.save(update_fields=["totp_secret", "totp_confirmed_at", "totp_last_step"])
    RecoveryCode.objects.create(user=citizen, code_hash=RECOVERY_HASH + "1")
    RecoveryCode.objects.create(user=citizen, code_hash=RECOVERY_HASH + "2")
    return citizen


def client_for(user: User) -> ApiClient:
    """Signed in as the app does it: staff with TOTP use their authenticator code."""
    second_factor = "totp" if user.is_staff and user.has_totp else ""
    _, tokens = sign_in(user, second_factor=second_factor)
    return ApiClient(token=tokens.access_token)


def enable_real_totp(user: User, *, confirmed_at: dt.datetime | None = None) -> str:
    """Give `user` a working authenticator secret (set up at `confirmed_at`, else now);
    returns it (base32) for pyotp."""
    from auth import totp

    secret = totp.new_secret()
    user.totp_secret = totp.encrypt_secret(secret)
    user.totp_confirmed_at = confirmed_at or timezone.now()
    user.totp_last_step = None
    user.save(update_fields=["totp_secret", "totp_confirmed_at", "totp_last_step"])
    return secret


def move_to_new_number(citizen: User, new_phone: str = "0987111222") -> None:
    """Support staff reset the account onto `new_phone` (a level-1 reset: applied at once)."""
    response = client_for(make_staff()).post(
        "/api/v1/support/resets",
        {
            "user_id": str(citizen.id),
            "kind": "lost_phone",
            "reason": "Lost the phone and the SIM",
            "evidence": "CCCD checked in person at the counter",
            "ticket_number": "HT-2026-0077",
            "new_phone": new_phone,
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "applied"
