"""Agencies' routes on issued results (signed like the rest of the agency API)."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from backend.errors import ErrorOut
from dossiers.agency.api import SIGNED
from dossiers.agency.replays import once_per_event
from dossiers.agency.signing import agency_label, agency_signature, current_agency
from dossiers.models import ResultDocument
from dossiers.results import REVOCATION_REASON_MAX_CHARS, revoke_result

router = Router(tags=["agency back office"])


class RevokeIn(Schema):
    reason: str = Field(min_length=1, max_length=REVOCATION_REASON_MAX_CHARS)


class AgencyResultOut(Schema):
    verification_code: str
    dossier_code: str
    sha256: str
    signing_time: dt.datetime
    revoked_at: dt.datetime | None
    revocation_reason: str

    @staticmethod
    def resolve_dossier_code(obj: ResultDocument) -> str:
        return obj.dossier.code or ""


@router.post(
    "/results/{verification_code}/revoke",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={
        200: AgencyResultOut,
        400: ErrorOut,
        401: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
    },
    summary="Revoke an issued result (verification then reports it revoked)",
)
@once_per_event
def revoke(request: HttpRequest, verification_code: str, payload: RevokeIn) -> ResultDocument:
    return revoke_result(
        current_agency(request),
        verification_code,
        reason=payload.reason,
        actor_label=agency_label(request),
    )
