"""Fees paid in the app: what is due, checkout, payment state, e-receipts; the gateways'
callbacks (server to server) and browser returns. Guide: mobile_api_docs/payments.md."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from ninja import Router, Schema, Status
from pydantic import Field

from auth.bearer import bearer, current_user
from backend.errors import ErrorOut, NotFound
from backend.idempotency import idempotent
from backend.middleware import client_ip
from backend.openapi_extra import file_download, json_answer
from dossiers.access import access_dossier
from payments import actions, receipts
from payments.access import access_payment, require_may_cancel
from payments.gateways import CallbackRejected, gateway_names, get_gateway
from payments.models import Payment, PaymentRequest

router = Router(tags=["payments"])

ERRORS: dict[int, type[ErrorOut]] = {401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


class FeeLineOut(Schema):
    kind: Literal["fee", "charge", "postage"] = Field(
        ..., description="fee: phí; charge: lệ phí; postage: cước bưu chính"
    )
    label: str
    amount: int = Field(..., description="VND (integer)")


class PaymentOut(Schema):
    id: uuid.UUID
    dossier_id: uuid.UUID
    dossier_code: str | None
    status: Literal["pending", "paid", "failed", "expired", "cancelled", "refunded"]
    amount: int = Field(..., description="VND (integer, never a float)")
    currency: Literal["VND"]
    lines: list[FeeLineOut]
    gateway: str
    checkout_url: str | None = Field(
        None, description="Open this in the browser or the gateway's app while pending"
    )
    expires_at: dt.datetime
    paid_at: dt.datetime | None
    gateway_reference: str = Field(..., description="The gateway's transaction number")
    receipt_number: str | None
    receipt_url: str | None = Field(None, description="The e-receipt (PDF) once paid")
    needs_refund: bool = Field(
        ..., description="A second payment of the same request: not counted, to be refunded"
    )
    created_at: dt.datetime

    @staticmethod
    def resolve_dossier_code(obj: Payment) -> str | None:
        return obj.dossier.code

    @staticmethod
    def resolve_lines(obj: Payment) -> list[dict[str, Any]]:
        return list(obj.request.lines)

    @staticmethod
    def resolve_checkout_url(obj: Payment) -> str | None:
        return obj.checkout_url if obj.status == Payment.Status.PENDING else None

    @staticmethod
    def resolve_receipt_url(obj: Payment) -> str | None:
        if not obj.receipt_number:
            return None
        return f"/api/v1/payments/{obj.pk}/receipt"


class DueOut(Schema):
    dossier_id: uuid.UUID
    source: Literal["submission", "agency"]
    status: Literal["open", "paid", "closed"]
    amount: int = Field(..., description="VND")
    currency: Literal["VND"] = "VND"
    lines: list[FeeLineOut]
    description: str
    pending_payment: PaymentOut | None


class PaymentListOut(Schema):
    items: list[PaymentOut]


class CheckoutIn(Schema):
    gateway: str | None = Field(
        None, max_length=20, description="vnpay or national; the server's default when omitted"
    )


def _due(dossier_id: uuid.UUID, request: PaymentRequest) -> dict[str, Any]:
    pending = (
        Payment.objects.filter(request=request, status=Payment.Status.PENDING)
        .select_related("request", "dossier")
        .first()
    )
    return {
        "dossier_id": dossier_id,
        "source": request.source,
        "status": request.status,
        "amount": request.amount,
        "lines": request.lines,
        "description": request.description,
        "pending_payment": pending,
    }


@router.get(
    "/dossiers/{dossier_id}/due",
    auth=bearer,
    response={200: DueOut, 401: ErrorOut, 404: ErrorOut},
    summary="What is to be paid on a dossier now (fee before submission, or the agency's request)",
)
def due(request: HttpRequest, dossier_id: uuid.UUID) -> dict[str, Any]:
    dossier = access_dossier(current_user(request), dossier_id)
    found = actions.due_request(dossier)
    if found is None:
        raise NotFound("nothing_due", _("Nothing is to be paid on this dossier now."))
    return _due(dossier.pk, found)


@router.post(
    "/dossiers/{dossier_id}/checkout",
    auth=bearer,
    response={200: PaymentOut, 201: PaymentOut, 503: ErrorOut, **ERRORS},
    summary="Start paying (201), or get the payment already waiting (200)",
)
@idempotent
def checkout(request: HttpRequest, dossier_id: uuid.UUID, payload: CheckoutIn) -> Status[Payment]:
    user = current_user(request)
    dossier = access_dossier(user, dossier_id)
    base = settings.PAYMENT_PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")
    context = actions.CheckoutContext(
        client_ip=client_ip(request),
        language=translation.get_language() or "vi",
        return_url=f"{base}/api/v1/payments/gateways/{{gateway}}/return",
        callback_url=f"{base}/api/v1/payments/gateways/{{gateway}}/callback",
    )
    payment, created = actions.checkout(user, dossier, context, gateway=payload.gateway)
    payment = Payment.objects.select_related("request", "dossier").get(pk=payment.pk)
    return Status(201 if created else 200, payment)


@router.get(
    "/dossiers/{dossier_id}/payments",
    auth=bearer,
    response={200: PaymentListOut, 401: ErrorOut, 404: ErrorOut},
    summary="Every payment made on a dossier, newest first",
)
def dossier_payments(request: HttpRequest, dossier_id: uuid.UUID) -> dict[str, Any]:
    dossier = access_dossier(current_user(request), dossier_id)
    items = (
        Payment.objects.filter(dossier=dossier)
        .select_related("request", "dossier")
        .order_by("-created_at")[:100]
    )
    return {"items": list(items)}


@router.get(
    "/{payment_id}",
    auth=bearer,
    response={200: PaymentOut, 401: ErrorOut, 404: ErrorOut},
    summary="One payment and its state",
)
def get_payment(request: HttpRequest, payment_id: uuid.UUID) -> Payment:
    return access_payment(current_user(request), payment_id)


@router.post(
    "/{payment_id}/cancel",
    auth=bearer,
    response={200: PaymentOut, 403: ErrorOut, **ERRORS},
    summary="Abandon a pending payment",
    description="Whoever started it, the dossier's applicant, and the owners and admins of "
    "its organisation; the organisation's other members get 403 `not_payer`.",
)
def cancel(request: HttpRequest, payment_id: uuid.UUID) -> Payment:
    payment = access_payment(current_user(request), payment_id)
    require_may_cancel(current_user(request), payment)
    actions.cancel_payment(payment)
    return access_payment(current_user(request), payment_id)


@router.get(
    "/{payment_id}/receipt",
    auth=bearer,
    response={200: None, 401: ErrorOut, 404: ErrorOut},
    summary="The electronic receipt (biên lai điện tử, PDF) of a paid payment",
    openapi_extra=file_download("The e-receipt, a PDF.", "application/pdf"),
)
def receipt(request: HttpRequest, payment_id: uuid.UUID) -> HttpResponse:
    payment = access_payment(current_user(request), payment_id)
    return receipts.receipt_response(payment)


# --- The gateways ------------------------------------------------------------------------


def _adapter(gateway: str) -> Any:
    if gateway not in gateway_names():
        raise NotFound()
    return get_gateway(gateway)


def _callback(request: HttpRequest, gateway: str) -> HttpResponse:
    adapter = _adapter(gateway)
    query = {key: request.GET.get(key, "") for key in request.GET}
    try:
        result = adapter.parse_callback(query, request.body)
    except CallbackRejected as exc:
        answer = "unknown_error" if exc.reason == "malformed" else "invalid_signature"
        actions.logger.warning("%s callback rejected: %s", gateway, exc.reason)
    else:
        answer = actions.settle(gateway, result, source="callback")
    reply = adapter.answer(answer)
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)


@router.get(
    "/gateways/{gateway}/callback",
    response={200: None, 400: ErrorOut, 404: ErrorOut},
    summary="Server-to-server payment result (VNPay IPN: signed query string)",
    openapi_extra=json_answer('VNPay\'s answer shape: `{"RspCode": "00", "Message": ...}`.'),
)
def callback_get(request: HttpRequest, gateway: str) -> HttpResponse:
    return _callback(request, gateway)


@router.post(
    "/gateways/{gateway}/callback",
    response={200: None, 400: ErrorOut, 404: ErrorOut},
    summary="Server-to-server payment result (national platform: signed JSON body)",
    openapi_extra=json_answer("The national platform's acknowledgement, signed."),
)
def callback_post(request: HttpRequest, gateway: str) -> HttpResponse:
    return _callback(request, gateway)


@router.get(
    "/gateways/{gateway}/return",
    response={302: None, 400: ErrorOut, 404: ErrorOut},
    summary="The browser comes back from the gateway; redirected to the app's deep link",
)
def gateway_return(request: HttpRequest, gateway: str) -> HttpResponse:
    adapter = _adapter(gateway)
    query = {key: request.GET.get(key, "") for key in request.GET}
    try:
        result = adapter.parse_return(query)
    except CallbackRejected:
        status, payment_id = "invalid", ""
    else:
        actions.settle(gateway, result, source="return")
        found = (
            Payment.objects.filter(gateway=gateway, order_ref=result.order_ref)
            .values_list("pk", "status")
            .first()
        )
        payment_id, status = (str(found[0]), found[1]) if found else ("", "unknown")
    target = settings.PAYMENT_APP_RETURN_URL.format(payment_id=payment_id, status=status)
    # The app's own scheme (a deep link): HttpResponseRedirect only allows http(s).
    response = HttpResponse(status=302)
    response["Location"] = target
    return response
