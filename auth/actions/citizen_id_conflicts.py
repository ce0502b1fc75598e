"""Citizen ID conflicts (`CitizenIdConflict`): flagged, and settled.

A national identity asserts a citizen ID another account had declared: the number
stays with the account that declared it, and a conflict is flagged for support, who
settle it in person (`national_sign_in`). The conflict is settled once the account
that declared the number no longer holds it: its citizen corrected it in the app
(`accounts.set_identity`), its own national identity asserted another number, or a
superuser changed it in the admin. The verified account takes the number at its next
national sign-in. `settle` is called wherever an account's citizen ID changes.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Q
from django.utils import timezone

from auth.models import CitizenIdConflict, User


def flag(*, citizen_id: str, verified_user: User, declared_by: User) -> CitizenIdConflict:
    """The conflict of `verified_user`'s asserted number held by `declared_by`, open
    (again, if one settled before and the number was declared anew)."""
    conflict, created = CitizenIdConflict.objects.get_or_create(
        citizen_id=citizen_id, verified_user=verified_user, declared_by=declared_by
    )
    if not created and conflict.resolved_at is not None:
        conflict.resolved_at = None
        conflict.save(update_fields=["resolved_at"])
    return conflict


def settle(account: User, *, now: dt.datetime | None = None) -> int:
    """Settle the open conflicts `account` is part of (as the account that declared
    the number or the one whose identity asserted it) whose declaring account no
    longer holds the number; returns how many were settled."""
    return (
        CitizenIdConflict.objects.filter(
            Q(declared_by=account) | Q(verified_user=account), resolved_at=None
        )
        .exclude(declared_by__citizen_id=F("citizen_id"))
        .update(resolved_at=now or timezone.now())
    )
