"""What an agency may see: its own dossiers once submitted; anyone else's answers 404."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from backend.errors import NotFound
from dossiers.models import Agency, Dossier


def agency_dossiers(agency: Agency) -> QuerySet[Dossier]:
    """What an agency may see: its own dossiers, once submitted (never drafts)."""
    return Dossier.objects.filter(agency=agency).exclude(status=Dossier.Status.DRAFT)


def access_agency_dossier(agency: Agency, reference: str) -> Dossier:
    """The agency's dossier by code or id; 404 for anyone else's (no existence leak)."""
    queryset = agency_dossiers(agency).select_related("procedure", "agency", "applicant")
    try:
        key = uuid.UUID(reference)
    except ValueError:
        dossier = queryset.filter(code=reference).first()
    else:
        dossier = queryset.filter(pk=key).first()
    if dossier is None:
        raise NotFound()
    return dossier
