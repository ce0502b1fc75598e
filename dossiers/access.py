"""Who may see which dossier. Handlers never fetch a dossier any other way."""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet

from auth.models import User
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
    visible = visible_dossiers(user).filter(pk=key).values("pk")
    queryset = Dossier.objects.filter(pk__in=visible).select_related("procedure", "agency")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    dossier = queryset.first()
    if dossier is None:
        raise NotFound()
    return dossier
