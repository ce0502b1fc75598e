"""Agency API: old-unit codes (before July 2025) converted to the 2025 units.

Agencies' older systems still send and store province/district/ward codes of the 63
provinces. This signed route answers, for each, the new province and commune with their
official codes; a ward split among several communes answers every candidate. It reads
nothing of the agency's dossiers, changes nothing, and so needs no X-Event-Id.
Kept apart from agency_api.py on purpose: one router, mounted under /agency.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Router, Schema
from pydantic import Field

from backend import old_address_api, old_addresses
from backend.errors import ErrorOut, Unprocessable, field_detail
from backend.old_address_api import ConversionOut, OldCodesIn
from dossiers.agency.signing import agency_signature

router = Router(tags=["agency back office"])


class OldCodesBatchIn(Schema):
    items: list[OldCodesIn] = Field(..., min_length=1, max_length=1000)


class ConvertedItemOut(Schema):
    input: OldCodesIn
    conversion: ConversionOut | None = Field(None, description="null when `error` is set")
    error: ErrorOut | None = Field(None, description="unknown_old_unit: no such old unit")


class ConvertedBatchOut(Schema):
    items: list[ConvertedItemOut] = Field(..., description="In the order sent")


def convert_batch(items: list[OldCodesIn]) -> list[dict[str, Any]]:
    """One answer per item: the conversion, or the coded error of that item alone."""
    answers = []
    for item in items:
        try:
            conversion = old_addresses.convert_codes(
                item.province_code, item.district_code, item.ward_code
            )
        except old_addresses.BadCodes as exc:
            error = old_address_api.bad_codes_error(exc)
            answers.append(
                {
                    "input": item,
                    "conversion": None,
                    "error": {
                        "code": error.code,
                        "message": str(error.message),
                        "details": error.details,
                    },
                }
            )
            continue
        answers.append(
            {"input": item, "conversion": old_address_api.conversion_out(conversion), "error": None}
        )
    return answers


@router.post(
    "/addresses/convert",
    auth=agency_signature,
    response={200: ConvertedBatchOut, 400: ErrorOut, 401: ErrorOut, 422: ErrorOut},
    summary="Old province/district/ward codes (before July 2025) -> 2025 province and commune",
    openapi_extra={
        "parameters": [
            *(
                {"in": "header", "name": name, "required": True, "schema": {"type": "string"}}
                for name in ("X-Agency-Key", "X-Timestamp", "X-Signature")
            ),
            {
                "in": "header",
                "name": "X-Event-Id",
                "required": False,
                "schema": {"type": "string"},
                "description": "Optional here (a conversion changes nothing); signed when sent",
            },
        ]
    },
)
def convert_old_codes(request: HttpRequest, payload: OldCodesBatchIn) -> dict[str, Any]:
    """At most ADDRESS_AGENCY_BATCH_MAX items per call."""
    if len(payload.items) > settings.ADDRESS_AGENCY_BATCH_MAX:
        message = _("At most %(max)s items per call.") % {"max": settings.ADDRESS_AGENCY_BATCH_MAX}
        raise Unprocessable(
            "too_many_items",
            message,
            details=[field_detail("items", "too_many_items", message)],
        )
    return {"items": convert_batch(payload.items)}
