"""Citizen ID conflicts (`CitizenIdConflict`): flagged, withdrawn, and settled.

The one record of a citizen ID claimed by one account while another holds it. The
number stays with the account that holds it; support settle the conflict in person.
Two ways to claim a number (`CitizenIdConflict.Source`), settled differently:

- asserted by the account's national identity (`national_sign_in`): settled once the
  account that held the number no longer holds it (its citizen corrected it in the app,
  its own national identity asserted another number, or a superuser changed it in the
  admin); the claiming account takes the number at its next national sign-in;
- entered by the account's citizen in the app (`accounts.set_identity`): settled once
  the claiming account holds the number (its national identity gave it, or its citizen
  entered it again once free, or a superuser set it), or withdrawn when its citizen
  entered another number or its national identity asserted another. The holder's
  correction does not settle it: the number is not the claimant's until it is recorded.

`settle` is called wherever an account's citizen ID changes.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Q
from django.utils import timezone

from auth.models import CitizenIdConflict, User

Source = CitizenIdConflict.Source


def flag(
    *, citizen_id: str, verified_user: User, declared_by: User, source: Source
) -> CitizenIdConflict:
    """The conflict of `verified_user`'s claim to the number `declared_by` holds, open
    (again, if one settled before and the number was claimed anew). A claim entered in
    the app and then asserted by the national identity becomes the identity's."""
    conflict, created = CitizenIdConflict.objects.get_or_create(
        citizen_id=citizen_id,
        verified_user=verified_user,
        declared_by=declared_by,
        defaults={"source": source},
    )
    if created:
        return conflict
    changed = []
    if conflict.resolved_at is not None:
        conflict.resolved_at = None
        changed.append("resolved_at")
    if source == Source.NATIONAL and conflict.source != Source.NATIONAL:
        conflict.source = Source.NATIONAL
        changed.append("source")
    if changed:
        conflict.save(update_fields=changed)
    return conflict


def withdraw(
    account: User, *, keep: CitizenIdConflict | None = None, now: dt.datetime | None = None
) -> int:
    """Settle the open claims `account`'s citizen entered in the app, but `keep`: its
    citizen entered another number, or its national identity asserted one."""
    claims = CitizenIdConflict.objects.filter(
        resolved_at=None, verified_user=account, source=Source.DECLARED
    )
    if keep is not None:
        claims = claims.exclude(pk=keep.pk)
    return claims.update(resolved_at=now or timezone.now())


def settle(account: User, *, now: dt.datetime | None = None) -> int:
    """Settle the open conflicts `account` is part of (claiming the number or holding
    it) that no longer stand (see the module's note); returns how many were settled."""
    now = now or timezone.now()
    involved = CitizenIdConflict.objects.filter(
        Q(declared_by=account) | Q(verified_user=account), resolved_at=None
    )
    released = (
        involved.filter(source=Source.NATIONAL)
        .exclude(declared_by__citizen_id=F("citizen_id"))
        .update(resolved_at=now)
    )
    taken = involved.filter(
        source=Source.DECLARED, verified_user__citizen_id=F("citizen_id")
    ).update(resolved_at=now)
    return released + taken
