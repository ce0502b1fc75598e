"""Citizens' dossiers: drafts, submission, reading, rating.

Withdrawal and supplements are in `dossiers.lifecycle_api`, attachments in
`dossiers.attachments_api`. Every route answers 404 for a dossier the caller may
not see (`dossiers.access`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import Counter
from typing import Any, cast

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status
from pydantic import BaseModel, ConfigDict, StrictInt, field_validator

from auth.bearer import bearer, current_user
from backend.errors import ErrorOut
from backend.idempotency import idempotent
from backend.middleware import request_language
from backend.pagination import PageParams, page_of, paginate
from backend.times import date_text
from dossiers import actions
from dossiers.access import REVOKED_MARK, first_visible, read_dossier
from dossiers.catalogue import get_procedure, pick, required_documents
from dossiers.catalogue_api import AgencyRef, agency_ref
from dossiers.deadlines import business_tz
from dossiers.models import Attachment, Dossier
from dossiers.results import result_revoked_at

router = Router(auth=bearer, tags=["dossiers"])

FORM_DESCRIPTION = (
    "Form values by field name (see the procedure's `form`). Drafts keep partial values; "
    "everything is checked at submission."
)


class StrictSchema(Schema):
    model_config = ConfigDict(extra="forbid")


class DraftIn(StrictSchema):
    procedure_id: StrictInt
    organisation_id: uuid.UUID | None = Field(
        None, description="Apply for this organisation (you must be a member)"
    )
    form: dict[str, Any] = Field(default_factory=dict, description=FORM_DESCRIPTION)


class DraftUpdateIn(StrictSchema):
    form: dict[str, Any] = Field(
        ..., description="Fields to set; `null` clears a field; other fields are kept"
    )


class RatingIn(StrictSchema):
    satisfaction: StrictInt = Field(
        ..., ge=1, le=3, description="1 rất hài lòng, 2 hài lòng, 3 không hài lòng"
    )
    comment: str = ""


class OutSchema(BaseModel):
    """What this module answers: built from dicts (`summary_out`, `dossier_out`), so
    pydantic validates them itself. ninja's `Schema` would first wrap every value of
    every nested object in its attribute getter (for ORM objects and resolvers, which
    these never are): on a dossier read, the app's most frequent request, that was
    most of the cost of the response (docs/performance.md)."""

    model_config = ConfigDict(from_attributes=True)


class ProcedureRef(OutSchema):
    id: int
    code: str
    name: str


class ApplicantOut(OutSchema):
    id: uuid.UUID
    full_name: str


class DocumentProgressOut(OutSchema):
    code: str
    name: str
    mandatory: bool
    min_files: int
    max_files: int
    attached: int = Field(
        ..., description="Files attached so far that count (not those in `revoked`)"
    )
    revoked: int = Field(
        ...,
        description="Files attached from the wallet that are a result its agency revoked "
        "since: they do not count, and the dossier cannot be sent while it holds one "
        "(replace them). `attached` + `revoked` is every file of the document",
    )


class DossierSummaryOut(OutSchema):
    id: uuid.UUID
    code: str | None = Field(None, description="{agency code}-{yyMMdd}-{NNNN}, once submitted")
    status: int = Field(..., description="0 draft, then the national portal's codes 1-10")
    status_label: str
    procedure: ProcedureRef
    agency: AgencyRef
    organisation_id: uuid.UUID | None
    submitted_at: dt.datetime | None
    appointment_at: dt.datetime | None = Field(None, description="Appointment date (hẹn trả)")
    version: int
    created_at: dt.datetime


class DossierOut(DossierSummaryOut):
    channel: int = Field(..., description="1 in person, 2 online, 3 by post")
    applicant: ApplicantOut
    form: dict[str, Any]
    documents: list[DocumentProgressOut]
    finished_at: dt.datetime | None
    handed_over_at: dt.datetime | None
    satisfaction: int | None
    satisfaction_comment: str
    rated_at: dt.datetime | None
    updated_at: dt.datetime


class DossierFilters(PageParams):
    status: int | None = Field(None, ge=0, le=10)
    procedure_id: int | None = None
    organisation_id: uuid.UUID | None = None
    submitted_from: dt.date | None = Field(None, description="Submitted on or after (Vietnam)")
    submitted_to: dt.date | None = Field(None, description="Submitted on or before (Vietnam)")

    _calendar_dates = field_validator("submitted_from", "submitted_to", mode="before")(date_text)


def summary_out(dossier: Dossier, language: str) -> dict[str, Any]:
    procedure = dossier.procedure
    return {
        "id": dossier.id,
        "code": dossier.code,
        "status": dossier.status,
        "status_label": str(Dossier.Status(dossier.status).label),
        "procedure": {
            "id": procedure.id,
            "code": procedure.code,
            "name": pick(procedure.name, procedure.name_en, language),
        },
        "agency": agency_ref(dossier.agency, language),
        "organisation_id": dossier.organisation_id,
        "submitted_at": dossier.submitted_at,
        "appointment_at": dossier.appointment_at,
        "version": dossier.version,
        "created_at": dossier.created_at,
    }


_NOT_READ = object()


def attachment_counts(dossier: Dossier) -> Counter[str]:
    """Files attached per document code, a revoked result's under its code marked
    (`REVOKED_MARK`): from `read_dossier`'s annotation, else a query."""
    codes = getattr(dossier, "attachment_codes", _NOT_READ)
    if codes is not _NOT_READ:
        return Counter(cast("list[str] | None", codes) or ())
    return Counter(
        f"{REVOKED_MARK}{code}" if revoked_at is not None else code
        for code, revoked_at in Attachment.objects.filter(dossier=dossier)
        .annotate(revoked_at=result_revoked_at())
        .values_list("document_code", "revoked_at")
    )


def dossier_out(dossier: Dossier, language: str) -> dict[str, Any]:
    documents = required_documents(dossier.procedure)
    counts = attachment_counts(dossier) if documents else Counter()
    return {
        **summary_out(dossier, language),
        "channel": dossier.channel,
        "applicant": {"id": dossier.applicant.id, "full_name": dossier.applicant.full_name},
        "form": dossier.form_data,
        "documents": [
            {
                "code": document.code,
                "name": pick(document.name, document.name_en, language),
                "mandatory": document.mandatory,
                "min_files": document.min_files,
                "max_files": document.max_files,
                "attached": counts[document.code],
                "revoked": counts[f"{REVOKED_MARK}{document.code}"],
            }
            for document in documents
        ],
        "finished_at": dossier.finished_at,
        "handed_over_at": dossier.handed_over_at,
        "satisfaction": dossier.satisfaction,
        "satisfaction_comment": dossier.satisfaction_comment,
        "rated_at": dossier.rated_at,
        "updated_at": dossier.updated_at,
    }


def etag_for(dossier: Dossier, language: str) -> str:
    """Changes with every version of the dossier or of its procedure (whose required
    documents it shows), and with the response language."""
    versions = f"{dossier.id}:{dossier.version}:{dossier.procedure.version}:{language}"
    digest = hashlib.sha256(versions.encode()).hexdigest()
    return f'"{digest[:32]}"'


def _matches(if_none_match: str, etag: str) -> bool:
    candidates = [part.strip() for part in if_none_match.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


def _with_etag(response: HttpResponse, dossier: Dossier, language: str) -> None:
    response["ETag"] = etag_for(dossier, language)
    response["Vary"] = "Accept-Language, Authorization"
    response["Cache-Control"] = "private, no-cache"


@router.get("", response=page_of(DossierSummaryOut), summary="List my dossiers")
def list_dossiers(request: HttpRequest, filters: Query[DossierFilters]) -> dict[str, Any]:
    """Your dossiers and your organisations' dossiers, newest first."""
    user = current_user(request)
    # Who may see what is applied per page (`first_visible`: a top-N per source).
    dossiers = Dossier.objects.select_related("procedure", "agency")
    if filters.status is not None:
        dossiers = dossiers.filter(status=filters.status)
    if filters.procedure_id is not None:
        dossiers = dossiers.filter(procedure_id=filters.procedure_id)
    if filters.organisation_id is not None:
        dossiers = dossiers.filter(organisation_id=filters.organisation_id)
    tz = business_tz()
    if filters.submitted_from is not None:
        start = dt.datetime.combine(filters.submitted_from, dt.time.min, tzinfo=tz)
        dossiers = dossiers.filter(submitted_at__gte=start)
    if filters.submitted_to is not None and filters.submitted_to < dt.date.max:
        end = dt.datetime.combine(
            filters.submitted_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz
        )
        dossiers = dossiers.filter(submitted_at__lt=end)
    rows, next_cursor = paginate(
        dossiers, filters, narrow=lambda page, count: first_visible(user, page, count)
    )
    language = request_language(request)
    return {"items": [summary_out(d, language) for d in rows], "next_cursor": next_cursor}


@router.post(
    "",
    response={201: DossierOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Start a dossier (a draft) for a procedure",
)
@idempotent
def create_draft(
    request: HttpRequest, payload: DraftIn, response: HttpResponse
) -> Status[dict[str, Any]]:
    """Start a draft for a procedure, for yourself or for one of your organisations."""
    procedure = get_procedure(payload.procedure_id)
    dossier = actions.create_draft(
        current_user(request),
        procedure,
        organisation_id=payload.organisation_id,
        form_data=payload.form,
    )
    language = request_language(request)
    _with_etag(response, dossier, language)
    return Status(201, dossier_out(dossier, language))


@router.get(
    "/{dossier_id}",
    response={200: DossierOut, 304: None, 404: ErrorOut},
    summary="Get a dossier: status, form, papers, deadlines",
)
def get_dossier(request: HttpRequest, dossier_id: uuid.UUID, response: HttpResponse) -> Any:
    """One dossier. Send `If-None-Match` with the last `ETag`: 304 (no body) if unchanged."""
    dossier = read_dossier(current_user(request), dossier_id)
    language = request_language(request)
    etag = etag_for(dossier, language)
    if _matches(request.headers.get("If-None-Match", ""), etag):
        not_modified = HttpResponse(status=304)
        _with_etag(not_modified, dossier, language)
        return not_modified
    _with_etag(response, dossier, language)
    return dossier_out(dossier, language)


@router.patch(
    "/{dossier_id}",
    response={200: DossierOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Change a draft's form",
)
def update_draft(
    request: HttpRequest, dossier_id: uuid.UUID, payload: DraftUpdateIn, response: HttpResponse
) -> dict[str, Any]:
    """Save form values of a draft (as often as you like)."""
    dossier = actions.update_draft(current_user(request), dossier_id, payload.form)
    language = request_language(request)
    _with_etag(response, dossier, language)
    return dossier_out(dossier, language)


@router.delete(
    "/{dossier_id}",
    response={204: None, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Delete a draft",
)
def delete_draft(request: HttpRequest, dossier_id: uuid.UUID) -> Status[None]:
    """Delete a draft and its attachments. Submitted dossiers cannot be deleted. An
    organisation's draft: its applicant and the organisation's owners and admins only
    (403 `not_applicant` for its other members)."""
    actions.delete_draft(current_user(request), dossier_id)
    return Status(204, None)


@router.post(
    "/{dossier_id}/submit",
    response={200: DossierOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Send a complete draft to its agency",
)
@idempotent
def submit_dossier(
    request: HttpRequest, dossier_id: uuid.UUID, response: HttpResponse
) -> dict[str, Any]:
    """Submit a complete draft. 422 `dossier_incomplete` lists every field error and every
    missing document; 409 `not_a_draft` if it was already submitted, `payment_required`
    while a fee due at submission is unpaid; 403 `identity_level_too_low` when the
    procedure needs a national identity (VNeID) of a higher level, `not_applicant` when
    the caller is a member of the dossier's organisation who is neither its applicant
    nor an owner or admin."""
    dossier = actions.submit_dossier(current_user(request), dossier_id)
    language = request_language(request)
    _with_etag(response, dossier, language)
    return dossier_out(dossier, language)


@router.post(
    "/{dossier_id}/rating",
    response={200: DossierOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Rate the service once the dossier is finished",
)
@idempotent
def rate_dossier(
    request: HttpRequest, dossier_id: uuid.UUID, payload: RatingIn, response: HttpResponse
) -> dict[str, Any]:
    """Rate your satisfaction once the result is handed over (status 10), once. An
    organisation's dossier: its applicant and the organisation's owners and admins
    (403 `not_applicant` for its other members)."""
    dossier = actions.rate_dossier(
        current_user(request), dossier_id, payload.satisfaction, payload.comment
    )
    language = request_language(request)
    _with_etag(response, dossier, language)
    return dossier_out(dossier, language)
