"""The procedure catalogue: agencies and procedures (public, no sign-in needed)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from backend.errors import ErrorOut, field_error
from backend.middleware import request_language
from backend.pagination import PageParams, page_of, paginate
from dossiers.catalogue import (
    active_agencies,
    active_procedures,
    filter_by_field,
    get_procedure,
    pick,
    search_procedures,
    wants_english,
)
from dossiers.form_spec import localised_spec
from dossiers.models import Agency, Procedure, RequiredDocument

router = Router(tags=["catalogue"])


class AgencyOut(Schema):
    id: int
    code: str = Field(..., description="Prefix of the agency's dossier codes")
    name: str
    level: str = Field(..., description="ministry | province | commune")
    province_code: str
    commune_code: str
    office_hours: list[list[str]]


class AgencyRef(Schema):
    id: int
    code: str
    name: str


class ProcedureSummaryOut(Schema):
    id: int
    code: str = Field(..., description="National procedure code, e.g. 1.001193")
    name: str
    field: str
    agency: AgencyRef
    service_level: str = Field(..., description="partial | whole (wholly online)")
    processing_time: int
    processing_unit: str = Field(..., description="working_days | working_hours | calendar_days")
    fee_amount: int = Field(..., description="VND; 0 means exempt")


class DocumentOut(Schema):
    code: str
    name: str
    mandatory: bool
    accepted_kinds: list[str]
    accepted_types: list[str] = Field(
        ..., description="Document types (codes) a wallet paper may have to be used here"
    )
    min_files: int
    max_files: int
    guidance: str


class ChoiceOut(Schema):
    value: str
    label: str


class FormFieldOut(Schema):
    name: str
    type: str = Field(
        ...,
        description="text | number | date | choice | phone | citizen_id | email | address "
        "(a commune/ward code) | checkbox",
    )
    label: str
    help: str
    required: bool
    min: Any = None
    max: Any = Field(None, description='For dates an ISO date or "today"')
    min_length: int | None = None
    max_length: int | None = None
    integer: bool | None = None
    old_address: bool | None = Field(
        None,
        description="address fields: offer converting an address of before July 2025 "
        "(POST /postal/old-addresses/convert); the value may then be that text, or the "
        "chosen commune code with the text in `<name>_as_written`",
    )
    choices: list[ChoiceOut] | None = None


class ProcedureOut(ProcedureSummaryOut):
    fee_timing: str = Field(..., description="before (when submitting) | after (with the result)")
    description: str
    postal_return_allowed: bool
    electronic_result: bool
    min_identity_level: int = Field(
        0,
        description="Least national identity (VNeID) level of the account that submits: 0 any, "
        "1 or 2 (below it, submission answers 403 identity_level_too_low)",
    )
    documents: list[DocumentOut]
    form: list[FormFieldOut]


class FieldOut(Schema):
    value: str = Field(..., description="Pass as `field` to filter procedures")
    label: str


class ProcedureFilters(PageParams):
    q: str | None = Field(None, description="Words to find, with or without diacritics")
    agency_id: int | None = None
    field: str | None = Field(None, max_length=200, description="A `value` of /catalogue/fields")
    service_level: Procedure.ServiceLevel | None = None


class AgencyFilters(PageParams):
    level: Agency.Level | None = None
    province_code: str | None = Field(None, max_length=8)


def agency_ref(agency: Agency, language: str) -> dict[str, Any]:
    return {
        "id": agency.id,
        "code": agency.code,
        "name": pick(agency.name, agency.name_en, language),
    }


def agency_out(agency: Agency, language: str) -> dict[str, Any]:
    return {
        **agency_ref(agency, language),
        "level": agency.level,
        "province_code": agency.province_code,
        "commune_code": agency.commune_code,
        "office_hours": agency.office_hours,
    }


def procedure_summary(procedure: Procedure, language: str) -> dict[str, Any]:
    return {
        "id": procedure.id,
        "code": procedure.code,
        "name": pick(procedure.name, procedure.name_en, language),
        "field": pick(procedure.field, procedure.field_en, language),
        "agency": agency_ref(procedure.agency, language),
        "service_level": procedure.service_level,
        "processing_time": procedure.processing_time,
        "processing_unit": procedure.processing_unit,
        "fee_amount": procedure.fee_amount,
    }


def document_out(document: RequiredDocument, language: str) -> dict[str, Any]:
    return {
        "code": document.code,
        "name": pick(document.name, document.name_en, language),
        "mandatory": document.mandatory,
        "accepted_kinds": document.accepted_kinds,
        "accepted_types": [t.code for t in document.accepted_types.all()],
        "min_files": document.min_files,
        "max_files": document.max_files,
        "guidance": pick(document.guidance, document.guidance_en, language),
    }


@router.get("/agencies", response=page_of(AgencyOut), summary="List agencies")
def list_agencies(request: HttpRequest, filters: Query[AgencyFilters]) -> dict[str, Any]:
    """Active agencies, by code."""
    agencies = active_agencies()
    if filters.level:
        agencies = agencies.filter(level=filters.level)
    if filters.province_code:
        agencies = agencies.filter(province_code=filters.province_code)
    rows, next_cursor = paginate(agencies, filters, ("code",))
    language = request_language(request)
    return {"items": [agency_out(a, language) for a in rows], "next_cursor": next_cursor}


@router.get(
    "/fields",
    response=list[FieldOut],
    summary="List the fields of the procedure catalogue (for filters)",
)
def list_fields(request: HttpRequest) -> list[dict[str, str]]:
    """The fields (lĩnh vực) of active procedures, to filter by."""
    english = wants_english(request_language(request))
    pairs = sorted(set(active_procedures().values_list("field", "field_en")))
    return [{"value": vi, "label": (english and en) or vi} for vi, en in pairs]


@router.get(
    "/procedures",
    response={200: page_of(ProcedureSummaryOut), 422: ErrorOut},
    summary="Search the procedure catalogue",
)
def list_procedures(request: HttpRequest, filters: Query[ProcedureFilters]) -> dict[str, Any]:
    """Search procedures ("khai sinh" finds "Đăng ký khai sinh"); filter by agency, field, level."""
    procedures = active_procedures()
    if filters.q:
        if len(filters.q) > settings.CATALOGUE_SEARCH_MAX_CHARS:
            limit = settings.CATALOGUE_SEARCH_MAX_CHARS
            raise field_error(
                "q", "too_long", _("Must be at most %(max)s characters.") % {"max": limit}, "query"
            )
        procedures = search_procedures(procedures, filters.q)
    if filters.agency_id is not None:
        procedures = procedures.filter(agency_id=filters.agency_id)
    if filters.field:
        procedures = filter_by_field(procedures, filters.field)
    if filters.service_level:
        procedures = procedures.filter(service_level=filters.service_level)
    rows, next_cursor = paginate(procedures, filters, ("name", "id"))
    language = request_language(request)
    return {"items": [procedure_summary(p, language) for p in rows], "next_cursor": next_cursor}


@router.get(
    "/procedures/{procedure_id}",
    response={200: ProcedureOut, 404: ErrorOut},
    summary="Get a procedure: its form, required papers, fees and time",
)
def get_procedure_detail(request: HttpRequest, procedure_id: int) -> dict[str, Any]:
    """One procedure with its required documents and its form."""
    procedure = get_procedure(procedure_id)
    language = request_language(request)
    return {
        **procedure_summary(procedure, language),
        "fee_timing": procedure.fee_timing,
        "description": pick(procedure.description, procedure.description_en, language),
        "postal_return_allowed": procedure.postal_return_allowed,
        "electronic_result": procedure.electronic_result,
        "min_identity_level": procedure.min_identity_level,
        "documents": [
            document_out(d, language)
            for d in procedure.documents.prefetch_related("accepted_types")
        ],
        "form": localised_spec(procedure.form_spec, wants_english(language)),
    }
