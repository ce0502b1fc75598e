"""Who may see which dossier. Handlers never fetch a dossier any other way."""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet

from auth.models import Membership, User
from backend.errors import NotFound
from dossiers.models import Dossier


def visible_dossiers(user: User) -> QuerySet[Dossier]:
    """The applicant's own dossiers and those of organisations they belong to."""
    return Dossier.objects.filter(
        Q(applicant=user) | Q(organisation__memberships__user=user)
    ).distinct()


def access_dossier(user: User, dossier_id: uuid.UUID | str, *, for_update: bool = False) -> Dossier:
    """The dossier if `user` may see it; 404 otherwise (never 403: no existence leak).

    With `for_update`, the row is locked until the transaction ends (call it
    inside `transaction.atomic()`); that serialises state changes of one dossier.
    """
    try:
        key = uuid.UUID(str(dossier_id))
    except ValueError as exc:
        raise NotFound() from exc
    # One primary-key read, then the same rule as `visible_dossiers` checked on the
    # row: cheaper to plan and run than the subquery on every read (see bench/).
    queryset = Dossier.objects.filter(pk=key).select_related("procedure", "agency", "applicant")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    dossier = queryset.first()
    if dossier is None or not _may_see(user, dossier):
        raise NotFound()
    return dossier


def _may_see(user: User, dossier: Dossier) -> bool:
    if dossier.applicant_id == user.pk:
        return True
    return (
        dossier.organisation_id is not None
        and Membership.objects.filter(organisation_id=dossier.organisation_id, user=user).exists()
    )
