"""Who hears about a dossier's events: decided here, by the sender, in one place."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from auth.models import Membership, User
from backend.any_of import AnyOf
from dossiers.models import Dossier


def recipients_for(dossier: Dossier) -> set[uuid.UUID]:
    """The applicant, plus members of the dossier's organisation who watch it."""
    recipients = {dossier.applicant_id}
    if dossier.organisation_id is not None:
        recipients.update(
            Membership.objects.filter(
                organisation_id=dossier.organisation_id, watches=True
            ).values_list("user_id", flat=True)
        )
    return recipients


def still_recipient(dossier: str, user: str) -> Q:
    """`recipients_for` as a condition on rows that name a dossier and a user (`dossier`
    and `user`: the paths to them from the row, e.g. "notification__dossier"): true while
    the user is the applicant, or a member of the dossier's organisation who watches it.

    For a decision taken after the audience was (held pushes, retries): the member
    may have left or stopped watching since. Set-based, so one query answers it for
    a batch of rows."""
    watching = Membership.objects.filter(
        organisation_id=OuterRef(f"{dossier}__organisation_id"),
        user_id=OuterRef(f"{user}_id"),
        watches=True,
    )
    return Q(**{f"{dossier}__applicant_id": F(f"{user}_id")}) | Q(Exists(watching))


def user_group(user_id: uuid.UUID | str) -> str:
    """The channel-layer group of one user's open sockets."""
    return f"user.{uuid.UUID(str(user_id)).hex}"


def dossier_group(dossier_id: uuid.UUID | str) -> str:
    """The group of sockets narrowed to one dossier (each was authorised when it joined)."""
    return f"dossier.{uuid.UUID(str(dossier_id)).hex}"


def followed_dossiers(user: User) -> QuerySet[Dossier]:
    """The dossiers whose events reach `user` unasked: their own, and those of the
    organisations they watch (the same rule as `recipients_for`, seen from the user)."""
    # A subquery rather than a join: no duplicate rows, so no DISTINCT for the
    # planner to sort (the stream runs this on every hint); as an array (`AnyOf`),
    # not `IN (subquery)`, so the OR is two index scans, not a scan of every dossier.
    watched = watched_organisations(user)
    return Dossier.objects.filter(Q(applicant=user) | Q(AnyOf("organisation_id", watched)))


def watched_organisations(user: User) -> QuerySet[Membership, Any]:
    """The ids of the organisations whose dossiers' events reach `user` (one column)."""
    return Membership.objects.filter(user=user, watches=True).values("organisation_id")


def own_unwatched_dossiers(user: User) -> QuerySet[Dossier]:
    """The applicant's dossiers that are not of an organisation they watch: with
    `watched_organisations`, the parts of `followed_dossiers` that do not overlap
    (the stream reads the first by dossier, the second by organisation)."""
    watched = watched_organisations(user)
    return Dossier.objects.filter(
        Q(applicant=user), Q(organisation__isnull=True) | ~Q(AnyOf("organisation_id", watched))
    )
