"""Lookup by dossier code without signing in; the owner's copy of the receipt secret."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Router, Schema
from pydantic import Field

from auth.bearer import bearer, current_user
from backend.errors import ErrorOut, NotFound
from backend.middleware import client_ip
from dossiers.access import access_dossier
from dossiers.lookup_secrets import display, reveal_lookup_secret
from tracking.lookup import CODE_MAX_CHARS, SECRET_MAX_CHARS, lookup_dossier, lookup_url

router = Router(tags=["lookup"])
owner_router = Router(tags=["lookup"])


class DossierLookupIn(Schema):
    code: str = Field(min_length=1, max_length=CODE_MAX_CHARS, examples=["HN-PXB-260105-0001"])
    secret: str = Field(min_length=1, max_length=SECRET_MAX_CHARS, examples=["ABCDE-FGHJK"])


class PublicStepOut(Schema):
    time: dt.datetime
    event_type: str
    status: int | None
    status_label: str | None
    text: str


class PublicDossierOut(Schema):
    code: str
    procedure_code: str
    procedure_name: str
    agency_code: str
    agency_name: str
    status: int
    status_label: str
    submitted_at: dt.datetime | None
    appointment_at: dt.datetime | None
    finished_at: dt.datetime | None
    steps: list[PublicStepOut]


class LookupSecretOut(Schema):
    code: str
    secret: str
    lookup_url: str


@router.post(
    "",
    auth=None,
    response={200: PublicDossierOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut, 503: ErrorOut},
    summary="Look a dossier up by its code and the receipt's secret (no sign-in)",
)
def lookup(request: HttpRequest, payload: DossierLookupIn) -> Any:
    """Procedure, agency, status, appointment date and the public steps of the
    timeline; never names, ID numbers, addresses, attachments or messages.

    An unknown code and a wrong secret get the same 404 `lookup_failed`. Attempts
    are capped per client IP and per code (429 `lookup_locked` with
    `Retry-After`). Case, spaces and dashes in the secret do not matter.
    """
    return lookup_dossier(payload.code, payload.secret, ip=client_ip(request))


@owner_router.get(
    "/{dossier_id}/lookup-secret",
    auth=bearer,
    response={200: LookupSecretOut, 401: ErrorOut, 404: ErrorOut},
    summary="The receipt's lookup secret (the applicant only)",
)
def get_lookup_secret(request: HttpRequest, dossier_id: uuid.UUID) -> Any:
    """Shown to the applicant who submitted the dossier, and printed on the receipt
    PDF they download; organisation members and everyone else get 404."""
    user = current_user(request)
    dossier = access_dossier(user, dossier_id)
    secret = reveal_lookup_secret(dossier) if dossier.applicant_id == user.pk else None
    if secret is None or not dossier.code:
        raise NotFound("no_lookup_secret", _("This dossier has no lookup secret."))
    return LookupSecretOut(
        code=dossier.code, secret=display(secret), lookup_url=lookup_url(dossier.code, secret)
    )
