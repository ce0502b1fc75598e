"""Payments as the agency's back-office system sees them (signed, like the rest of
the agency API): the state of a dossier's payments and their e-receipts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import Field

from backend.errors import ErrorOut, NotFound
from backend.openapi_extra import file_download
from dossiers.agency.access import access_agency_dossier
from dossiers.agency.api import SIGNED_READ
from dossiers.agency.signing import agency_signature, current_agency
from payments import receipts
from payments.api import FeeLineOut
from payments.models import Payment

router = Router(tags=["agency back office"])


class AgencyPaymentOut(Schema):
    id: uuid.UUID
    status: str = Field(..., description="pending, paid, failed, expired, cancelled, refunded")
    amount: int = Field(..., description="VND")
    currency: str
    lines: list[FeeLineOut]
    gateway: str
    gateway_reference: str
    receipt_number: str | None
    counted: bool = Field(..., description="This payment settles the request")
    needs_refund: bool
    paid_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_lines(obj: Payment) -> list[dict[str, Any]]:
        return list(obj.request.lines)


class AgencyPaymentListOut(Schema):
    items: list[AgencyPaymentOut]


@router.get(
    "/dossiers/{reference}/payments",
    auth=agency_signature,
    openapi_extra=SIGNED_READ,
    response={200: AgencyPaymentListOut, 401: ErrorOut, 404: ErrorOut},
    summary="The payments of one of your dossiers and their state",
)
def dossier_payments(request: HttpRequest, reference: str) -> dict[str, Any]:
    dossier = access_agency_dossier(current_agency(request), reference)
    items = Payment.objects.filter(dossier=dossier).select_related("request").order_by("created_at")
    return {"items": list(items)}


@router.get(
    "/payments/{payment_id}/receipt",
    auth=agency_signature,
    openapi_extra={
        **SIGNED_READ,
        **file_download("The e-receipt, a PDF.", "application/pdf"),
    },
    response={200: None, 401: ErrorOut, 404: ErrorOut},
    summary="The e-receipt (PDF) of a paid payment of one of your dossiers",
)
def payment_receipt(request: HttpRequest, payment_id: uuid.UUID) -> HttpResponse:
    agency = current_agency(request)
    payment = (
        Payment.objects.filter(pk=payment_id, dossier__agency=agency)
        .select_related("request", "dossier", "dossier__agency", "dossier__procedure", "payer")
        .first()
    )
    if payment is None:
        raise NotFound()
    return receipts.receipt_response(payment)
