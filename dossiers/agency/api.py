"""Agencies' back-office systems (server to server, HMAC-signed).

Every action route is signed (signing.py) and runs at most once per
X-Event-Id (replays.py). An agency sees and moves only its own dossiers: others answer 404.
The guide for agencies' IT teams is mobile_api_docs/agency-api.md.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.conf import settings
from django.db.models import QuerySet, TextField
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.db.models.functions import Cast
from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from pydantic import BaseModel, Field, StrictInt, field_validator

from auth.bearer import bearer
from backend.any_of import IdIn
from backend.compiled_rows import CompiledRows, Marker
from backend.errors import (
    ApiError,
    ErrorOut,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    field_error,
)
from backend.pagination import PageParams, cursor_values, encode_cursor
from backend.params import QueryParams
from backend.signed_links import PageSigner, open_link, sign_link
from backend.times import (
    Rfc3339Text,
    date_text,
    form_date_text,
    json_response,
    moment_text,
    rfc3339,
)
from dossiers import lifecycle, monitoring, result_signatures
from dossiers.agency.access import access_agency_dossier, agency_dossiers
from dossiers.agency.replays import once_per_event
from dossiers.agency.signing import (
    agency_label,
    agency_signature,
    agency_signature_optional,
    current_agency,
)
from dossiers.attachments import read_stored
from dossiers.models import Agency, AgencyCredential, Attachment, Dossier
from dossiers.results import result_revoked_at

router = Router(tags=["agency back office"])

ERRORS: dict[int, type[ErrorOut]] = {
    400: ErrorOut,
    401: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
}
FILE_SALT = "dossiers.agency-file"


def _signed_headers(required: bool, write: bool = True) -> dict[str, Any]:
    """The signature headers of an agency route, as parameters of its operation.

    `write`: a POST carries `X-Event-Id` (its replay key); a GET sends none (its
    signature signs an empty event id)."""
    described = [
        ("X-Agency-Key", "Your credential's key id (`ak_…`)"),
        ("X-Timestamp", "Unix time in seconds (at most 300 s from server time)"),
        ("X-Event-Id", "Your unique id of this operation; retries reuse it"),
        (
            "X-Signature",
            "hex HMAC-SHA256 of METHOD, path, X-Timestamp, X-Event-Id (empty on GET) and "
            "the body's SHA-256, see mobile_api_docs/agency-api.md",
        ),
    ]
    return {
        "parameters": [
            {
                "in": "header",
                "name": name,
                "required": required,
                "schema": {"type": "string"},
                "description": text,
            }
            for name, text in described
            if write or name != "X-Event-Id"
        ]
    }


SIGNED = _signed_headers(required=True)
SIGNED_READ = _signed_headers(required=True, write=False)
MAX_RANGE_DAYS = 366


class AgencyDossierFields(BaseModel):
    """The dossier's columns as agencies read them: the actions' answer and a feed item."""

    id: uuid.UUID
    code: str | None
    status: int
    status_label: str
    version: int
    submitted_at: dt.datetime | None
    accepted_at: dt.datetime | None
    appointment_at: dt.datetime | None
    original_appointment_at: dt.datetime | None
    paused_at: dt.datetime | None
    overdue_at: dt.datetime | None
    finished_at: dt.datetime | None
    handed_over_at: dt.datetime | None
    updated_at: dt.datetime


class AgencyDossierOut(Schema, AgencyDossierFields):
    @staticmethod
    def resolve_status_label(obj: Dossier) -> str:
        return str(Dossier.Status(obj.status).label)


def _actor(request: HttpRequest) -> lifecycle.Actor:
    return lifecycle.Actor.agency_system(agency_label(request))


def _dossier(request: HttpRequest, reference: str) -> Dossier:
    return access_agency_dossier(current_agency(request), reference)


# --- Actions ---------------------------------------------------------------------------


class AcceptIn(Schema):
    receipt_number: str = Field("", max_length=100, description="Number of the receipt (form 01)")
    appointment_at: dt.datetime | None = Field(
        None, description="Appointment on the receipt; computed from the procedure when omitted"
    )
    message: str = Field("", max_length=2000)

    _moment = field_validator("appointment_at", mode="before")(moment_text)


class ReasonIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


class MessageIn(Schema):
    message: str = Field("", max_length=2000)


class RequestedDocumentIn(Schema):
    code: str = Field("", max_length=50, description="A RequiredDocument code of the procedure")
    note: str = Field("", max_length=1000, description="What is missing or wrong")


class SupplementIn(Schema):
    documents: list[RequestedDocumentIn] = Field(..., min_length=1, max_length=50)
    message: str = Field(..., min_length=1, max_length=4000)


class FeeLineIn(Schema):
    kind: Literal["fee", "charge", "postage"] = Field(
        ..., description="fee: phí; charge: lệ phí; postage: cước bưu chính (result by post)"
    )
    label: str = Field("", max_length=200)
    amount: StrictInt = Field(..., ge=0, le=10**12, description="VND")


class PaymentIn(Schema):
    amount: StrictInt = Field(..., ge=1, le=10**12, description="VND")
    description: str = Field("", max_length=2000)
    lines: list[FeeLineIn] = Field(
        default_factory=list,
        max_length=20,
        description="Fee lines adding up to `amount` (one fee line of the whole amount if empty)",
    )


class HandOverIn(Schema):
    method: Literal["in_person", "post", "electronic"]
    message: str = Field("", max_length=2000)


class ApologyIn(Schema):
    new_appointment_at: dt.datetime
    reason: str = Field(..., min_length=1, max_length=4000)

    _moment = field_validator("new_appointment_at", mode="before")(moment_text)


def _appointment(value: dt.datetime | None, field: str) -> dt.datetime | None:
    """An appointment the agency gives: with its time zone, not in the past (beyond the
    clock skew signatures allow) and at most AGENCY_APPOINTMENT_MAX_DAYS ahead (the
    working-time calendars, and a citizen's patience, end somewhere)."""
    if value is None:
        return None
    if timezone.is_naive(value):
        raise field_error(field, "naive_datetime", _("Give the time zone, e.g. +07:00."))
    now = timezone.now()
    try:
        moment = value.astimezone(dt.UTC)
    except OverflowError:  # an offset moves year 1 or 9999 out of range: far either way
        latest, earliest = (
            dt.datetime.max.replace(tzinfo=dt.UTC),
            dt.datetime.min.replace(tzinfo=dt.UTC),
        )
        moment = latest if value.year > 1 else earliest
    if moment < now - dt.timedelta(seconds=settings.AGENCY_SIGNATURE_MAX_SKEW_SECONDS):
        raise field_error(field, "appointment_in_past", _("The appointment is in the past."))
    if moment > now + dt.timedelta(days=settings.AGENCY_APPOINTMENT_MAX_DAYS):
        raise field_error(
            field,
            "appointment_too_far",
            _("The appointment is more than %(days)s days ahead.")
            % {"days": settings.AGENCY_APPOINTMENT_MAX_DAYS},
        )
    return value


@router.post(
    "/dossiers/{reference}/accept",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={200: AgencyDossierOut, **ERRORS},
    summary="Accept at reception (receipt, form 01): 1 → 2",
)
@once_per_event
def accept(request: HttpRequest, reference: str, payload: AcceptIn) -> Dossier:
    dossier = _dossier(request, reference)
    return lifecycle.accept(
        dossier.pk,
        _actor(request),
        receipt_number=payload.receipt_number,
        appointment_at=_appointment(payload.appointment_at, "appointment_at"),
        message=payload.message,
    )


@router.post(
    "/dossiers/{reference}/refuse",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={200: AgencyDossierOut, **ERRORS},
    summary="Refuse at reception (form 03): 1 → 3",
)
@once_per_event
def refuse(request: HttpRequest, reference: str, payload: ReasonIn) -> Dossier:
    dossier = _dossier(request, reference)
    return lifecycle.refuse(dossier.pk, _actor(request), reason=payload.reason)


@router.post(
    "/dossiers/{reference}/start-processing",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={200: AgencyDossierOut, **ERRORS},
    summary="Start or continue processing: 2, 6 → 4",
)
@once_per_event
def start_processing(request: HttpRequest, reference: str, payload: MessageIn) -> Dossier:
    dossier = _dossier(request, reference)
    return lifecycle.start_processing(dossier.pk, _actor(request), message=payload.message)


@router.post(
    "/dossiers/{reference}/request-supplement",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={200: AgencyDossierOut, **ERRORS},
    summary="Request missing or corrected papers (form 02): 2, 4 → 5; the clock pauses",
)
@once_per_event
def request_supplement(request: HttpRequest, reference: str, payload: SupplementIn) -> Dossier:
    dossier = _dossier(request, reference)
    return lifecycle.request_supplement(
        dossier.pk,
        _actor(request),
        documents=[item.dict() for item in payload.documents],
        message=payload.message,
    )


@router.post(
    "/dossiers/{reference}/request-payment",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={200: AgencyDossierOut, **ERRORS},
    summary="Request fees or taxes (VND): 2, 4 → 6",
)
@once_per_event
def request_payment(request: HttpRequest, reference: str, payload: PaymentIn) -> Dossier:
    dossier = _dossier(request, reference)
    return lifecycle.request_payment(
        dossier.pk,
        _actor(request),
        amount=payload.amount,
        description=payload.description,
        lines=[line.dict() for line in payload.lines],
    )


@router.post(
    "/dossiers/{reference}/complete",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={200: AgencyDossierOut, 413: ErrorOut, **ERRORS},
    summary="Result ready, optionally with the electronic result (PDF): 2, 4, 6 → 9",
)
@once_per_event
def complete(
    request: HttpRequest,
    reference: str,
    message: Form[str] = "",
    result_file: File[UploadedFile | None] = None,
    signing: Form[Literal["agency", "server"]] = "agency",
    valid_until: Form[dt.date | None] = None,
) -> Dossier:
    """With `result_file`: `signing=agency` (default) for a PDF the agency signed
    itself (validated: chain, revocation, signing time, untouched since signing),
    `signing=server` for an unsigned PDF the service stamps and signs with the
    agency's configured key. See mobile_api_docs/results.md."""
    dossier = _dossier(request, reference)
    form_date_text(request, "valid_until")  # pydantic reads "0" as 1970-01-01
    if len(message) > 2000:
        raise field_error("message", "string_too_long", _("At most 2000 characters."), "form")
    signed = None
    if result_file is not None:
        if (result_file.size or 0) > settings.RESULT_FILE_MAX_BYTES:
            raise PayloadTooLarge(
                "result_file_too_large",
                _("The result file is larger than %(limit)s bytes.")
                % {"limit": settings.RESULT_FILE_MAX_BYTES},
                details={"limit_bytes": settings.RESULT_FILE_MAX_BYTES},
            )
        head = result_file.read(5)
        result_file.seek(0)
        if head != b"%PDF-":
            raise field_error(
                "result_file", "not_a_pdf", _("The result file must be a PDF."), "file"
            )
        signed = result_signatures.prepare_result(
            dossier.agency.code, result_file.read(), signing=signing
        )
    return lifecycle.complete(
        dossier.pk,
        _actor(request),
        message=message,
        result_file_name=(result_file.name or "result.pdf") if result_file else "",
        signed_result=signed,
        valid_until=valid_until,
    )


@router.post(
    "/dossiers/{reference}/hand-over",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={200: AgencyDossierOut, **ERRORS},
    summary="Result handed over (in person, by post, electronically): 9 → 10",
)
@once_per_event
def hand_over(request: HttpRequest, reference: str, payload: HandOverIn) -> Dossier:
    dossier = _dossier(request, reference)
    return lifecycle.hand_over(
        dossier.pk, _actor(request), method=payload.method, message=payload.message
    )


@router.post(
    "/dossiers/{reference}/stop",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={200: AgencyDossierOut, **ERRORS},
    summary="Stop processing, with the reason: 2, 4, 5, 6 → 8",
)
@once_per_event
def stop(request: HttpRequest, reference: str, payload: ReasonIn) -> Dossier:
    dossier = _dossier(request, reference)
    return lifecycle.stop(dossier.pk, _actor(request), reason=payload.reason)


@router.post(
    "/dossiers/{reference}/apologise",
    auth=agency_signature,
    openapi_extra=SIGNED,
    response={200: AgencyDossierOut, **ERRORS},
    summary="Apology letter (form 04) with a later appointment",
)
@once_per_event
def apologise(request: HttpRequest, reference: str, payload: ApologyIn) -> Dossier:
    dossier = _dossier(request, reference)
    new_date = _appointment(payload.new_appointment_at, "new_appointment_at")
    if new_date is None:  # the schema requires it; kept for the type checker
        raise field_error("new_appointment_at", "missing", _("This field is required."))
    return lifecycle.apologise(
        dossier.pk, _actor(request), new_appointment_at=new_date, reason=payload.reason
    )


# --- Pull feed -------------------------------------------------------------------------


# The feed's schemas document its body and test it (tests/dossiers/test_agency_feed.py
# renders every page of the tests through them too): the route writes the body itself.
class AgencyApplicantOut(BaseModel):
    full_name: str
    phone: str
    citizen_id: str | None


class AgencyOrganisationOut(BaseModel):
    tax_code: str
    name: str


class FeedAttachmentOut(BaseModel):
    id: uuid.UUID
    document_code: str
    kind: str
    content_type: str
    size: int
    sha256: str
    original_name: str
    created_at: dt.datetime
    revoked: bool = Field(
        ...,
        description="The paper is a result an agency issued (attached from the citizen's "
        "wallet) and has revoked since",
    )
    revoked_at: dt.datetime | None = Field(..., description="When that result was revoked")
    download_url: str


class FeedDossierOut(AgencyDossierFields):
    procedure_code: str
    channel: int
    applicant: AgencyApplicantOut
    organisation: AgencyOrganisationOut | None
    form_data: dict[str, Any]
    attachments: list[FeedAttachmentOut]


class FeedOut(BaseModel):
    items: list[FeedDossierOut]
    next_cursor: str = Field(..., description="Pass as `cursor` on the next call (always set)")
    has_more: bool
    links_expire_at: dt.datetime


class FeedParams(QueryParams):
    cursor: str | None = Field(None, max_length=512)
    limit: int | None = Field(None, ge=1, le=1000)


# The position before every change: what an empty first page answers, so that
# `next_cursor` is always a cursor (passing it, or none, reads from the beginning).
FEED_START = encode_cursor([dt.datetime(2000, 1, 1, tzinfo=dt.UTC), uuid.UUID(int=0)])


def file_token(agency: Agency, attachment: Attachment) -> str:
    return sign_link(_file_grant(agency, attachment.pk), purpose=FILE_SALT)


def _file_grant(agency: Agency, attachment_id: uuid.UUID | str) -> dict[str, Any]:
    return {"a": str(attachment_id), "g": agency.pk}


def _file_grant_json(agency_id: int, attachment_id: str) -> str:
    """`_file_grant` as `signing.dumps` writes it (compact JSON; the id's text, hex
    digits and dashes, needs no escaping): a page's 500 links skip the encoder."""
    return f'{{"a":"{attachment_id}","g":{agency_id}}}'


# What a feed page reads, as rows: the dossier's columns, its moments written by
# PostgreSQL (`Rfc3339Text`: ~1,000 a page, not parsed and formatted again in Python),
# then its procedure, applicant and organisation, its form, and `updated_at` as a
# datetime for the cursor. In the order `_feed_item` unpacks them.
FEED_MOMENTS = tuple(
    name
    for name, field in AgencyDossierFields.model_fields.items()
    if field.annotation in (dt.datetime, dt.datetime | None)
)
FEED_WRITTEN_MOMENTS = {f"{name}_text": Rfc3339Text(name) for name in FEED_MOMENTS}
FEED_DOSSIER_COLUMNS = (
    "id",
    "code",
    "status",
    "version",
    *FEED_WRITTEN_MOMENTS,
    "procedure__code",
    "channel",
    "applicant__full_name",
    "applicant__phone",
    "applicant__citizen_id",
    "organisation__tax_code",
    "organisation__name",
    "form_data",
    "updated_at",
)


class UuidText(Cast):
    """A UUID column as text with its dashes (`str(uuid)`), written by the database.

    PostgreSQL's `uuid` casts to that form; the embedded default's SQLite keeps a UUID
    as 32 hex digits, which the dashes are put into here (the feed then answers the
    id the upload answered)."""

    def __init__(self, expression: str) -> None:
        super().__init__(expression, output_field=TextField())

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template=(
                "(substr(%(expressions)s, 1, 8) || '-' || substr(%(expressions)s, 9, 4)"
                " || '-' || substr(%(expressions)s, 13, 4) || '-'"
                " || substr(%(expressions)s, 17, 4) || '-' || substr(%(expressions)s, 21))"
            ),
            **extra_context,
        )


# A paper as FeedAttachmentOut writes it, but its link: id and moment as text.
FEED_ATTACHMENT_COLUMNS = (
    UuidText("id"),
    "document_code",
    "kind",
    "content_type",
    "size",
    "sha256",
    "original_name",
    Rfc3339Text("created_at"),
    Rfc3339Text(result_revoked_at()),
)


def _uuid_array(ids: list[uuid.UUID]) -> str:
    """UUIDs as `IdIn` sends them: the text form of an array (`{...}`)."""
    return "{" + ",".join([str(key) for key in ids]) + "}"


# A page's two statements, compiled by the ORM once per shape (backend/compiled_rows.py):
# building and compiling them was 3 ms of a page's 10 ms of CPU. The markers stand for
# a call's values: the settle moment, the cursor, the page's dossier ids.
FEED_PAGE = CompiledRows(
    {
        "settled": Marker(dt.datetime(1970, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)),
        "moment": Marker(dt.datetime(1970, 1, 3, 4, 5, 6, 789012, tzinfo=dt.UTC)),
        "key": Marker(uuid.UUID("00000000-0000-4000-8000-00000000fee1")),
    }
)
FEED_PAPERS = CompiledRows(
    {"ids": Marker([uuid.UUID("00000000-0000-4000-8000-00000000fee2")], param=_uuid_array)}
)


def _feed_page(
    agency: Agency,
    limit: int,
    settled: dt.datetime,
    moment: dt.datetime | None = None,
    key: uuid.UUID | None = None,
) -> QuerySet[Dossier, tuple[Any, ...]]:
    """The page's dossiers: what the agency may see (`agency_dossiers`), settled, after
    the cursor (`moment`, `key`), in keyset order, one more than `limit`."""
    queryset: QuerySet[Dossier] = agency_dossiers(agency).filter(updated_at__lte=settled)
    if moment is not None:
        # A row value, an index condition on dossier_agency_feed: the index scan
        # starts at the cursor (the OR form read the agency's whole history to it).
        queryset = queryset.filter(TupleGreaterThan(Tuple("updated_at", "id"), (moment, key)))
    return (
        queryset.order_by("updated_at", "pk")
        .annotate(**FEED_WRITTEN_MOMENTS)
        .values_list(*FEED_DOSSIER_COLUMNS)[: limit + 1]
    )


def _feed_papers(ids: list[uuid.UUID]) -> QuerySet[Attachment, tuple[Any, ...]]:
    """The papers of the page's dossiers (`ids`, one array parameter), by dossier."""
    return (
        Attachment.objects.filter(IdIn("dossier_id", ids))
        .order_by("dossier_id", "document_code", "created_at")
        .values_list("dossier_id", *FEED_ATTACHMENT_COLUMNS)
    )


def _feed_item(row: tuple[Any, ...], labels: dict[int, str]) -> dict[str, Any]:
    """A dossier's row as FeedDossierOut writes it (its fields in their order)."""
    (
        pk,
        code,
        status,
        version,
        submitted_at,
        accepted_at,
        appointment_at,
        original_appointment_at,
        paused_at,
        overdue_at,
        finished_at,
        handed_over_at,
        updated_at,
        procedure_code,
        channel,
        full_name,
        phone,
        citizen_id,
        tax_code,
        organisation_name,
        form_data,
        _,
    ) = row
    return {
        "id": str(pk),
        "code": code,
        "status": status,
        "status_label": labels[status],
        "version": version,
        "submitted_at": submitted_at,
        "accepted_at": accepted_at,
        "appointment_at": appointment_at,
        "original_appointment_at": original_appointment_at,
        "paused_at": paused_at,
        "overdue_at": overdue_at,
        "finished_at": finished_at,
        "handed_over_at": handed_over_at,
        "updated_at": updated_at,
        "procedure_code": procedure_code,
        "channel": channel,
        "applicant": {"full_name": full_name, "phone": phone, "citizen_id": citizen_id},
        "organisation": (
            None if tax_code is None else {"tax_code": tax_code, "name": organisation_name}
        ),
        "form_data": form_data,
        "attachments": [],
    }


def _feed_items(
    request: HttpRequest, agency: Agency, rows: list[tuple[Any, ...]], signer: PageSigner
) -> list[Any]:
    """The page's items with their papers and download links, in two queries.

    A page is up to 100 dossiers with about five papers each. Both come as rows (no
    model objects, no queryset per dossier as `prefetch_related` makes) and go out as
    the JSON FeedOut documents, without a validation pass over what this code wrote
    (tests/dossiers/test_agency_feed.py holds every page of its tests to the schema).
    One signer and one base URL serve every link of the page.
    """
    labels = {status.value: str(status.label) for status in Dossier.Status}
    items = {row[0]: _feed_item(row, labels) for row in rows}
    if not items:
        return []
    sign = signer.sign_json
    base = request.build_absolute_uri("/api/v1/agency/files/")
    agency_id = agency.pk
    papers = FEED_PAPERS.rows("papers", _feed_papers, ids=list(items))
    attachments: list[dict[str, Any]] = []
    of = None
    for dossier_id, pk, code, kind, content_type, size, sha256, name, created_at, revoked in papers:
        # The rows come by dossier; a UUID's `int` compares in C (its == is Python's).
        if dossier_id.int != of:
            attachments = items[dossier_id]["attachments"]
            of = dossier_id.int
        attachments.append(
            {
                "id": pk,
                "document_code": code,
                "kind": kind,
                "content_type": content_type,
                "size": size,
                "sha256": sha256,
                "original_name": name,
                "created_at": created_at,
                "revoked": revoked is not None,
                "revoked_at": revoked,
                "download_url": base + sign(_file_grant_json(agency_id, pk)),
            }
        )
    return list(items.values())


@router.get(
    "/feed",
    auth=agency_signature,
    openapi_extra=SIGNED_READ,
    response={200: FeedOut, 401: ErrorOut, 422: ErrorOut},
    summary="New and changed dossiers since a cursor, oldest change first",
)
def feed(request: HttpRequest, params: Query[FeedParams]) -> HttpResponse:
    """Keyset over (updated_at, id). Changes younger than AGENCY_FEED_SETTLE_SECONDS
    are held back so a transaction that commits late cannot land behind a cursor."""
    agency = current_agency(request)
    limit = min(params.limit or settings.API_PAGE_SIZE_DEFAULT, settings.API_PAGE_SIZE_MAX)
    settled = timezone.now() - dt.timedelta(seconds=settings.AGENCY_FEED_SETTLE_SECONDS)
    cursor = params.cursor
    after: dict[str, Any] = {}
    if cursor:
        after["moment"], after["key"] = cursor_values(Dossier, ["updated_at", "id"], cursor)
    # The statement's text follows the agency (its access rule) and the limit.
    rows = FEED_PAGE.rows(
        (agency.pk, limit),
        lambda **values: _feed_page(agency, limit, **values),
        settled=settled,
        **after,
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    if rows:
        cursor = encode_cursor([rows[-1][-1], rows[-1][0]])
    signer = PageSigner(FILE_SALT)
    return json_response(
        {
            "items": _feed_items(request, agency, rows, signer),
            "next_cursor": cursor or FEED_START,
            "has_more": has_more,
            # Exactly when its links stop opening (whole seconds, as they are signed).
            "links_expire_at": rfc3339(signer.expires_at(settings.AGENCY_FILE_URL_TTL_SECONDS)),
        }
    )


@router.get(
    "/files/{token}",
    auth=None,
    response={200: None, 404: ErrorOut, 410: ErrorOut},
    summary="Download an attachment through a link from the feed (short-lived)",
    openapi_extra={
        "responses": {
            200: {
                "description": "The file, as a download (`Content-Disposition: attachment`).",
                "content": {
                    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        }
    },
)
def download_file(request: HttpRequest, token: str) -> FileResponse:
    payload = open_link(
        token,
        purpose=FILE_SALT,
        max_age=settings.AGENCY_FILE_URL_TTL_SECONDS,
        expired=lambda: ApiError(
            "link_expired", _("This download link expired: fetch the feed again."), status=410
        ),
    )
    attachment = (
        Attachment.objects.filter(
            pk=payload["a"], dossier__agency_id=payload["g"], dossier__agency__is_active=True
        )
        .exclude(dossier__status=Dossier.Status.DRAFT)
        .first()
    )
    if attachment is None:
        raise NotFound()
    return FileResponse(
        read_stored(attachment.file.name),
        content_type=attachment.content_type,
        as_attachment=True,
        filename=attachment.original_name or f"{attachment.pk}",
    )


# --- Monitoring and performance ------------------------------------------------------------


class MonitoredDossierOut(Schema):
    id: uuid.UUID
    code: str | None
    status: int
    appointment_at: dt.datetime | None
    deadline: dt.datetime | None
    overdue_at: dt.datetime | None
    apologised_at: dt.datetime | None
    working_seconds_left: int | None = Field(
        None, description="At-risk list only: working time left before the deadline"
    )


class MonitoringOut(Schema):
    overdue: list[MonitoredDossierOut]
    overdue_without_apology: list[MonitoredDossierOut]
    at_risk: list[MonitoredDossierOut]


class MonitoringSummaryOut(Schema):
    overdue: int = Field(..., description="Clock running, deadline passed")
    overdue_without_apology: int = Field(
        ..., description="Of those, not even the apologised date holds (violations)"
    )
    at_risk: int = Field(..., description="Clock running, less than one working day left")


class MonitoringPageOut(Schema):
    items: list[MonitoredDossierOut]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page"
    )
    has_more: bool


MONITORING_PAGE = {200: MonitoringPageOut, 401: ErrorOut, 422: ErrorOut}
MonitoredList = Literal["overdue", "overdue_without_apology", "at_risk"]


@router.get(
    "/monitoring",
    auth=agency_signature,
    openapi_extra=SIGNED_READ,
    response={200: MonitoringOut, 401: ErrorOut},
    summary="Deprecated (every dossier in one answer, unbounded): use /monitoring/summary "
    "and the paged lists",
    deprecated=True,
)
def monitoring_view(request: HttpRequest) -> dict[str, Any]:
    """Every overdue, overdue-without-apology and at-risk dossier in one answer,
    unbounded (1.3 MB for the largest agency at a province's size). Kept as published
    for the systems built on it (a breaking change gets a new version prefix); use
    `/monitoring/summary` and the paged lists."""
    agency = current_agency(request)
    own = agency_dossiers(agency)
    at_risk = []
    for dossier, left in monitoring.at_risk(own, agency=agency):
        dossier.working_seconds_left = left  # type: ignore[attr-defined]
        at_risk.append(dossier)
    return {
        "overdue": list(monitoring.overdue(own).order_by("deadline", "pk")),
        "overdue_without_apology": list(
            monitoring.overdue_without_apology(own).order_by("deadline", "pk")
        ),
        "at_risk": at_risk,
    }


@router.get(
    "/monitoring/summary",
    auth=agency_signature,
    openapi_extra=SIGNED_READ,
    response={200: MonitoringSummaryOut, 401: ErrorOut},
    summary="How many of your dossiers are overdue, overdue without apology, at risk, now",
)
def monitoring_summary(request: HttpRequest) -> dict[str, Any]:
    """The counts; the dossiers themselves are the pages of `/monitoring/overdue`,
    `/monitoring/overdue-without-apology` and `/monitoring/at-risk`."""
    agency = current_agency(request)
    own = agency_dossiers(agency)
    now = timezone.now()
    return {
        **monitoring.count_overdue(own, now),
        "at_risk": monitoring.count_at_risk(agency, own, now),
    }


def _monitoring_page(request: HttpRequest, params: PageParams, which: MonitoredList) -> Any:
    """One page of a monitoring list, in (deadline, id) order, keyset-paged as every
    list is (backend/pagination.py's cursor): at most API_PAGE_SIZE_MAX dossiers.
    Each page is read at its own moment: a dossier that left the list meanwhile
    (finished, paused) is not shown again, one whose deadline passed since may be."""
    agency = current_agency(request)
    own = agency_dossiers(agency)
    limit = min(params.limit or settings.API_PAGE_SIZE_DEFAULT, settings.API_PAGE_SIZE_MAX)
    if params.cursor:
        # The deadline is a moment, read as the model's moments are.
        moment, key = cursor_values(Dossier, ["appointment_at", "id"], params.cursor)
        own = monitoring.after(own, moment, key)
    now = timezone.now()
    rows: list[Dossier]
    if which == "at_risk":
        rows = []
        # One more than the page tells whether more follow: a LIMIT in SQL (`limit`).
        for dossier, left in monitoring.at_risk(own, now, agency, limit=limit + 1):
            dossier.working_seconds_left = left  # type: ignore[attr-defined]
            rows.append(dossier)
    else:
        listed = monitoring.overdue if which == "overdue" else monitoring.overdue_without_apology
        rows = list(
            listed(own, now)
            .only(*monitoring.AT_RISK_FIELDS)  # what MonitoredDossierOut shows
            .order_by("deadline", "pk")[: limit + 1]
        )
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if has_more else None
    return {
        "items": rows,
        "next_cursor": encode_cursor([last.deadline, last.pk]) if last else None,  # type: ignore[attr-defined]
        "has_more": has_more,
    }


@router.get(
    "/monitoring/overdue",
    auth=agency_signature,
    openapi_extra=SIGNED_READ,
    response=MONITORING_PAGE,
    summary="Your overdue dossiers (clock running, deadline passed), earliest deadline first",
)
def monitoring_overdue(request: HttpRequest, params: Query[PageParams]) -> Any:
    return _monitoring_page(request, params, "overdue")


@router.get(
    "/monitoring/overdue-without-apology",
    auth=agency_signature,
    openapi_extra=SIGNED_READ,
    response=MONITORING_PAGE,
    summary="Your overdue dossiers without apology (violations), earliest deadline first",
)
def monitoring_overdue_without_apology(request: HttpRequest, params: Query[PageParams]) -> Any:
    return _monitoring_page(request, params, "overdue_without_apology")


@router.get(
    "/monitoring/at-risk",
    auth=agency_signature,
    openapi_extra=SIGNED_READ,
    response=MONITORING_PAGE,
    summary="Your dossiers with less than one working day left, earliest deadline first",
)
def monitoring_at_risk(request: HttpRequest, params: Query[PageParams]) -> Any:
    return _monitoring_page(request, params, "at_risk")


class ReceivedOut(Schema):
    total: int
    in_person: int
    online: int
    postal: int
    online_share: float | None


class FinishedOut(Schema):
    total: int
    on_time: int
    late: int
    on_time_share: float | None


class FeesOut(Schema):
    requested: int = Field(..., description="Payment requests (status 6) made in the period")
    paid_online: int = Field(..., description="Of those, paid online in the app")
    paid_online_share: float | None


class PerformanceOut(Schema):
    agency_code: str | None
    from_date: dt.date
    to_date: dt.date
    received: ReceivedOut
    finished: FinishedOut
    overdue_now: int
    overdue_without_apology_now: int
    average_processing_hours: float | None
    fees: FeesOut


class PerformanceParams(QueryParams):
    date_from: dt.date = Field(..., alias="from", description="First business day (inclusive)")
    date_to: dt.date = Field(..., alias="to", description="Last business day (inclusive)")
    agency: str | None = Field(None, description="Agency code (staff only; omit for all)")

    _dates = field_validator("date_from", "date_to", mode="before")(date_text)


@router.get(
    "/performance",
    auth=[agency_signature_optional, bearer],
    openapi_extra=_signed_headers(required=False, write=False),
    response={200: PerformanceOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Indicators for a date range (agency credentials, or a staff member's token)",
)
def performance(request: HttpRequest, params: Query[PerformanceParams]) -> dict[str, Any]:
    date_from, date_to, agency = params.date_from, params.date_to, params.agency
    if isinstance(request.auth, AgencyCredential):  # type: ignore[attr-defined]
        target: Agency | None = current_agency(request)
    else:
        user = request.auth  # type: ignore[attr-defined]
        if not user.is_staff:
            raise PermissionDenied()
        target = None
        if agency:
            target = Agency.objects.filter(code=agency).first()
            if target is None:
                raise NotFound()
    if date_to < date_from:
        raise field_error(
            "to", "invalid_range", _("The end date is before the start date."), "query"
        )
    if date_to >= dt.date.max:  # its next day, where the range ends, does not exist
        raise field_error("to", "out_of_range", _("The end date is out of range."), "query")
    if (date_to - date_from).days >= MAX_RANGE_DAYS:
        raise field_error(
            "to", "range_too_long", _("At most %(days)s days.") % {"days": MAX_RANGE_DAYS}, "query"
        )
    figures = monitoring.performance(target, date_from, date_to)
    figures["agency_code"] = target.code if target else None
    return figures
