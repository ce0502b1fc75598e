"""The append-only audit trail of support actions (who, what, whom, when, evidence, approver)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from auth.models import SupportAuditRecord, SupportReset, User

Action = SupportAuditRecord.Action


def record_support_action(
    actor: User,
    action: str,
    *,
    subject: User | None = None,
    reset: SupportReset | None = None,
    evidence: str = "",
    approver: User | None = None,
    channel: str = "api",
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> SupportAuditRecord:
    """Append one record. Never pass secrets, codes or full ID numbers in `details`."""
    return SupportAuditRecord.objects.create(
        actor=actor,
        action=action,
        subject=subject,
        reset=reset,
        evidence=evidence,
        approver=approver,
        channel=channel,
        ip=ip,
        details=details or {},
    )


def audit_of(subject: User) -> QuerySet[SupportAuditRecord]:
    """Support actions taken on `subject`'s account (what the citizen may list)."""
    return SupportAuditRecord.objects.filter(subject=subject).select_related("reset")
