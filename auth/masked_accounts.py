"""What support staff see of an account: enough to recognise it, no secrets."""

from __future__ import annotations

from typing import Any

from auth.access import identity_level, open_citizen_id_claims
from auth.citizen_ids import masked_citizen_id
from auth.models import DeviceSession, SupportReset, User
from auth.phone import mask_phone


def mask_name(full_name: str) -> str:
    """ "Lê Thị Hoa" -> "L. T. Hoa": the given name and the initials of the rest."""
    words = full_name.split()
    if len(words) <= 1:
        return (full_name[:1] + "•••") if full_name else ""
    return " ".join([*(f"{w[0]}." for w in words[:-1]), words[-1]])


def masked_account(subject: User) -> dict[str, Any]:
    """What support staff see of an account: enough to recognise it, no secrets."""
    pending = (
        SupportReset.objects.filter(user=subject, status=SupportReset.Status.PENDING)
        .values_list("id", flat=True)
        .first()
    )
    return {
        "id": subject.id,
        "full_name_masked": mask_name(subject.full_name),
        "phone_masked": mask_phone(subject.phone),
        "citizen_id_masked": masked_citizen_id(subject.citizen_id) or "",
        "citizen_id_conflict": open_citizen_id_claims(subject).exists(),
        "verification_level": subject.verification_level,
        "national_identity_level": identity_level(subject),
        "phone_verified": subject.phone_verified_at is not None,
        "has_totp": subject.has_totp,
        "is_active": subject.is_active,
        "is_staff": subject.is_staff,
        "must_reset_password": subject.must_reset_password,
        "active_sessions": DeviceSession.objects.filter(user=subject, revoked_at=None).count(),
        "pending_reset_id": pending,
        "date_joined": subject.date_joined,
    }
