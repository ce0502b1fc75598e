"""Every state change of payments: one function each, one transaction each.

Lock order, everywhere: the payment request row, then its payments, then (in
dossiers.lifecycle) the dossier. Keeping one order means concurrent callbacks,
checkouts and closings queue behind each other instead of deadlocking; the
request lock is also what makes a second checkout return the first payment and
twenty simultaneous callbacks record one payment, one event and one push.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth.actions import support
from auth.models import User
from backend.errors import Conflict, ServiceUnavailable, field_error
from backend.joined_read import JoinedRead, preparing_cursor
from backend.row_writes import save_fields
from dossiers import lifecycle
from dossiers.events import EventType
from dossiers.models import Dossier, DossierEvent, Procedure
from payments.gateways import GatewayError, GatewayResult, PaymentOrder, get_gateway
from payments.models import Payment, PaymentAnomaly, PaymentRequest

logger = logging.getLogger(__name__)

P = Payment.Status
R = PaymentRequest.Status
SOURCES = ("callback", "return", "query")


# --- What is due -----------------------------------------------------------------------


def submission_fee_due(dossier: Dossier) -> bool:
    """A wholly-online procedure whose fee is paid when submitting (catalogue: fee_timing)."""
    procedure = dossier.procedure
    return (
        procedure.fee_amount > 0
        and procedure.fee_timing == Procedure.FeeTiming.BEFORE
        and procedure.service_level == Procedure.ServiceLevel.WHOLE
    )


def _agency_request(dossier: Dossier) -> PaymentRequest | None:
    """The request behind the dossier's current status 6 (created from its event if new)."""
    if dossier.status != Dossier.Status.PAYMENT_REQUESTED:
        return None
    event = (
        DossierEvent.objects.filter(dossier=dossier, type=EventType.DOSSIER_PAYMENT_REQUESTED)
        .order_by("-seq")
        .first()
    )
    if event is None:
        return None
    return request_from_event(event)


def request_from_event(event: DossierEvent) -> PaymentRequest:
    """The fee request an agency's payment-requested event stands for (idempotent)."""
    data = event.data or {}
    amount = int(data.get("amount") or 0)
    lines = data.get("lines") or [
        {"kind": "fee", "label": str(data.get("description") or ""), "amount": amount}
    ]
    try:
        with transaction.atomic():
            request, _created = PaymentRequest.objects.get_or_create(
                event_id=event.pk,
                defaults={
                    "dossier_id": event.dossier_id,
                    "source": PaymentRequest.Source.AGENCY,
                    "amount": amount,
                    "lines": lines,
                    "description": str(data.get("description") or ""),
                },
            )
    except IntegrityError:  # created meanwhile by the subscriber or another checkout
        request = PaymentRequest.objects.get(event_id=event.pk)
    return request


def _submission_request(dossier: Dossier) -> PaymentRequest | None:
    if dossier.status != Dossier.Status.DRAFT or not submission_fee_due(dossier):
        return None
    procedure = dossier.procedure
    lines = [{"kind": "fee", "label": procedure.name, "amount": procedure.fee_amount}]
    try:
        with transaction.atomic():
            request, _created = PaymentRequest.objects.get_or_create(
                dossier=dossier,
                source=PaymentRequest.Source.SUBMISSION,
                defaults={"amount": procedure.fee_amount, "lines": lines},
            )
    except IntegrityError:
        request = PaymentRequest.objects.get(
            dossier=dossier, source=PaymentRequest.Source.SUBMISSION
        )
    return request


def due_request(dossier: Dossier) -> PaymentRequest | None:
    """What the citizen may pay on this dossier now, if anything."""
    return _agency_request(dossier) or _submission_request(dossier)


# --- Checkout --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutContext:
    client_ip: str
    language: str
    return_url: str
    callback_url: str


def _order_ref() -> str:
    # vnp_TxnRef: letters and digits, unique; 20 characters of randomness.
    return secrets.token_hex(10).upper()


def _nothing_to_pay() -> Conflict:
    return Conflict("nothing_to_pay", _("There is nothing to pay on this dossier now."))


def checkout(
    user: User, dossier: Dossier, context: CheckoutContext, *, gateway: str | None = None
) -> tuple[Payment, bool]:
    """Start paying what is due on `dossier` (already access-checked); (payment, created).

    While a payment of the same request is pending and not expired, it is
    returned again (a second device gets the first device's payment).
    """
    gateway_name = gateway or settings.PAYMENT_GATEWAY
    if gateway_name not in settings.PAYMENT_GATEWAYS:
        raise field_error("gateway", "unknown_gateway", _("Not one of the allowed values."))
    with transaction.atomic():
        request = due_request(dossier)
        if request is None:
            raise _nothing_to_pay()
        request = PaymentRequest.objects.select_for_update().get(pk=request.pk)
        if request.status == R.PAID:
            raise Conflict("already_paid", _("This request is already paid."))
        if request.status != R.OPEN:
            raise _nothing_to_pay()
        now = timezone.now()
        pending = Payment.objects.select_for_update().filter(request=request, status=P.PENDING)
        for payment in pending:
            if payment.expires_at > now:
                return payment, False
            # The gateway refuses payment after vnp_ExpireDate; a late callback
            # is still recorded (as an anomaly) by `settle`.
            _move(payment, P.EXPIRED)
        expires = now + dt.timedelta(minutes=settings.PAYMENT_TTL_MINUTES)
        order_ref = _order_ref()
        code = dossier.code or str(dossier.pk)[:8]
        order = PaymentOrder(
            order_ref=order_ref,
            amount=request.amount,
            description=f"Thanh toan phi, le phi ho so {code}",
            created_at=now,
            expires_at=expires,
            return_url=context.return_url.replace("{gateway}", gateway_name),
            callback_url=context.callback_url.replace("{gateway}", gateway_name),
            client_ip=context.client_ip,
            language=context.language,
        )
        try:
            started = get_gateway(gateway_name).start(order)
        except GatewayError as exc:
            logger.warning("checkout at %s failed: %s", gateway_name, exc)
            raise ServiceUnavailable(
                "gateway_unavailable",
                _("The payment gateway is not available. Please try again later."),
            ) from exc
        payment = Payment.objects.create(
            request=request,
            dossier=dossier,
            payer=user,
            gateway=gateway_name,
            order_ref=order_ref,
            amount=request.amount,
            checkout_url=started.url,
            gateway_reference=started.gateway_reference,
            expires_at=expires,
        )
        return payment, True


def _move(payment: Payment, status: str, **fields: Any) -> None:
    if status not in Payment.MOVES[payment.status]:
        raise Conflict(
            "invalid_payment_transition",
            _("This payment cannot change from “%(status)s”.")
            % {"status": payment.get_status_display()},
        )
    payment.status = status
    for name, value in fields.items():
        setattr(payment, name, value)
    # Only what moved (the row is locked): not the checkout URL and the rest again.
    save_fields(payment, ["status", *fields, "updated_at"])


def cancel_payment(payment: Payment) -> Payment:
    """The citizen abandons a pending payment (already access-checked)."""
    with transaction.atomic():
        PaymentRequest.objects.select_for_update().get(pk=payment.request_id)
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != P.PENDING:
            raise Conflict(
                "payment_not_pending", _("Only a payment waiting for payment can be cancelled.")
            )
        _move(locked, P.CANCELLED)
        return locked


# --- The gateway's word ----------------------------------------------------------------


def _anomaly(
    payment: Payment | None,
    gateway: str,
    result: GatewayResult,
    kind: str,
    source: str,
    **details: Any,
) -> PaymentAnomaly:
    anomaly, created = PaymentAnomaly.objects.get_or_create(
        gateway=gateway,
        order_ref=result.order_ref,
        kind=kind,
        gateway_reference=result.gateway_reference,
        defaults={
            "payment": payment,
            "reported_amount": result.amount,
            "reported_status": result.outcome,
            "source": source,
            "details": details,
        },
    )
    if created:
        logger.warning(
            "payment anomaly %s on %s order %s (%s)", kind, gateway, result.order_ref, source
        )
    return anomaly


def receipt_number(payment: Payment, paid_at: dt.datetime) -> str:
    return f"BL{timezone.localtime(paid_at):%y%m%d}-{payment.order_ref}"


def settle(gateway: str, result: GatewayResult, *, source: str) -> str:
    """Apply what the gateway says (signature already checked); returns the answer name.

    Answers: confirmed, already_confirmed, order_not_found, invalid_amount.
    A paid result only counts when the amount and the currency are exactly
    what is due; money that arrives where we did not expect it (a second
    payment, an expired or cancelled one, the wrong amount) is recorded as a
    `PaymentAnomaly` for reconciliation and, when it is ours to return,
    flagged for refund.
    """
    if source not in SOURCES:
        raise ValueError(source)
    # A plain read first, before the transaction: the gateway sends every result
    # more than once (VNPay retries, and duplicates its IPN), and a repeat of a
    # recorded payment is answered from it, without a transaction or a lock.
    seen = _seen(gateway, result.order_ref)
    if seen is None:
        return "order_not_found"
    if _repeats_recorded_payment(seen, result):
        return "already_confirmed"
    with transaction.atomic():
        # The request's lock first, then the payment's: the one lock order (checkout,
        # cancel, expiry take it too). A payment never changes request; its state is
        # read again under the locks (the plain read may be older).
        request = _LOCKED_REQUEST.get(pk=seen["request_id"])
        payment = _LOCKED_PAYMENT.get(pk=seen["pk"])
        if result.outcome in ("pending", "not_found"):
            return "confirmed"
        if result.amount != payment.amount or result.currency != payment.currency:
            if result.outcome == "paid":
                _anomaly(
                    payment,
                    gateway,
                    result,
                    PaymentAnomaly.Kind.AMOUNT_MISMATCH,
                    source,
                    due=payment.amount,
                    currency=result.currency,
                )
            return "invalid_amount"
        if payment.status == P.PENDING:
            if result.outcome == "paid":
                _paid(request, payment, gateway, result, source)
            elif result.outcome == "cancelled":
                _move(payment, P.CANCELLED, failure_code=result.failure_code[:20])
            else:
                _move(payment, P.FAILED, failure_code=result.failure_code[:20])
            return "confirmed"
        if result.outcome != "paid":
            return "already_confirmed"
        if payment.status in (P.PAID, P.REFUNDED):
            if result.gateway_reference and result.gateway_reference != payment.gateway_reference:
                # The same order paid again under another transaction (two devices on
                # one checkout): money moved twice; it is never counted twice.
                _anomaly(
                    payment,
                    gateway,
                    result,
                    PaymentAnomaly.Kind.DUPLICATE_PAYMENT,
                    source,
                    recorded_reference=payment.gateway_reference,
                )
            return "already_confirmed"
        late: dict[str, str] = {
            P.EXPIRED: PaymentAnomaly.Kind.PAID_AFTER_EXPIRY,
            P.CANCELLED: PaymentAnomaly.Kind.PAID_AFTER_CANCEL,
        }
        kind = late.get(payment.status, PaymentAnomaly.Kind.PAID_AFTER_FAILURE)
        _anomaly(payment, gateway, result, kind, source, recorded_status=payment.status)
        return "already_confirmed"


# The reads of every callback, compiled once (backend/joined_read.py): the ORM's
# building of these queries cost more client CPU than PostgreSQL took to answer them.
_SEEN_COLUMNS = ("pk", "request_id", "status", "amount", "currency", "gateway_reference")
_SEEN_SQL = (
    'SELECT "id", "request_id", "status", "amount", "currency", "gateway_reference" '
    'FROM "payments_payment" WHERE "gateway" = %s AND "order_ref" = %s'
)
_LOCKED_REQUEST = JoinedRead(PaymentRequest, for_update=True)
_LOCKED_PAYMENT = JoinedRead(Payment, for_update=True)


def _seen(gateway: str, order_ref: str) -> dict[str, Any] | None:
    """The payment's row as it is now (no lock), or None: what `settle` needs to tell a
    repeat of a recorded payment and to lock the request and the payment by key."""
    with preparing_cursor(connection) as cursor:
        cursor.execute(_SEEN_SQL, [gateway, order_ref])
        row = cursor.fetchone()
    return None if row is None else dict(zip(_SEEN_COLUMNS, row, strict=True))


def _repeats_recorded_payment(seen: Mapping[str, object], result: GatewayResult) -> bool:
    """`result` says again what `seen` (the payment's row, read without a lock) records:
    paid, with the same amount, currency and transaction.

    A paid payment only ever moves to refunded, and its amount, currency and
    transaction never change, so `settle`'s locked path would answer
    `already_confirmed` and write nothing: the answer holds without the locks.
    Anything else (a pending payment, another transaction, another amount) takes
    the locked path.
    """
    return (
        result.outcome == "paid"
        and seen["status"] in (P.PAID, P.REFUNDED)
        and result.amount == seen["amount"]
        and result.currency == seen["currency"]
        and result.gateway_reference in ("", seen["gateway_reference"])
    )


def _paid(
    request: PaymentRequest,
    payment: Payment,
    gateway: str,
    result: GatewayResult,
    source: str,
) -> None:
    now = timezone.now()
    paid_at = result.paid_at or now
    fields: dict[str, Any] = {
        "paid_at": paid_at,
        "gateway_reference": result.gateway_reference[:64],
        "bank_code": result.bank_code[:20],
        "settled_by": source,
    }
    if request.status != R.OPEN:
        kind = (
            PaymentAnomaly.Kind.DUPLICATE_PAYMENT
            if request.status == R.PAID
            else PaymentAnomaly.Kind.REQUEST_CLOSED
        )
        _move(payment, P.PAID, needs_refund=True, refund_reason=kind, **fields)
        _anomaly(payment, gateway, result, kind, source, request_status=request.status)
        return
    number = receipt_number(payment, paid_at)
    if request.source == PaymentRequest.Source.AGENCY:
        try:
            # Locks the dossier (after the request and the payment: the one lock order)
            # and refuses before writing anything unless it still waits for this fee
            # (status 6): the lifecycle's table decides, on its one locked read.
            lifecycle.record_payment(
                request.dossier_id,
                lifecycle.Actor("system", None, f"payment:{gateway}"),
                amount=payment.amount,
                payment_id=str(payment.pk),
                gateway=gateway,
                gateway_reference=fields["gateway_reference"],
                receipt_number=number,
            )
        except lifecycle.InvalidTransition as refused:
            # The agency moved on (stopped, finished, took cash at the counter) before
            # the subscriber closed the request: the money is not counted, it goes back.
            _move(
                payment,
                P.PAID,
                needs_refund=True,
                refund_reason=PaymentAnomaly.Kind.REQUEST_CLOSED,
                **fields,
            )
            _close(request, "dossier_moved_on")
            _anomaly(
                payment,
                gateway,
                result,
                PaymentAnomaly.Kind.REQUEST_CLOSED,
                source,
                status=refused.details["current_status"],
            )
            return
    else:
        # A fee due at submission: the draft's lock orders this with submit_dossier.
        Dossier.objects.select_for_update(of=("self",)).get(pk=request.dossier_id)
    _move(payment, P.PAID, counted=True, receipt_number=number, **fields)
    request.status = R.PAID
    request.paid_at = paid_at
    save_fields(request, ["status", "paid_at"])


# --- Closing, expiring, refunding -------------------------------------------------------


def _close(request: PaymentRequest, reason: str) -> None:
    request.status = R.CLOSED
    request.closed_at = timezone.now()
    request.closed_reason = reason[:40]
    request.save(update_fields=["status", "closed_at", "closed_reason"])
    for payment in Payment.objects.select_for_update().filter(request=request, status=P.PENDING):
        _move(payment, P.CANCELLED, failure_code="request_closed")


def close_open_requests(dossier_id: Any, reason: str) -> int:
    """The dossier moved on without an online payment: open requests end, pending payments
    are cancelled (a callback that still arrives becomes an anomaly, never silently lost)."""
    closed = 0
    with transaction.atomic():
        for request in PaymentRequest.objects.select_for_update().filter(
            dossier_id=dossier_id, status=R.OPEN, source=PaymentRequest.Source.AGENCY
        ):
            _close(request, reason)
            closed += 1
    return closed


def expire_payment(payment_id: Any) -> bool:
    """A pending payment past its expiry that the gateway says was not paid."""
    with transaction.atomic():
        request_id = Payment.objects.filter(pk=payment_id).values_list("request_id", flat=True)
        PaymentRequest.objects.select_for_update().filter(pk__in=request_id).first()
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != P.PENDING:
            return False
        _move(payment, P.EXPIRED)
        return True


def mark_refunded(
    payment_id: Any,
    *,
    reference: str = "",
    by: User | None = None,
    context: support.Context | None = None,
) -> Payment:
    """The gateway refunded a paid payment (recorded by staff `by`, or reconciliation).

    `reference` replaces the refund reason; it is refused rather than cut when it does
    not fit, so the record never loses its end. Staff's record is in the audit trail too.
    """
    limit = Payment._meta.get_field("refund_reason").max_length or 0
    if len(reference) > limit:
        raise ValueError(f"a refund reference has at most {limit} characters")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        _move(payment, P.REFUNDED, refund_reason=reference or payment.refund_reason, refunded_by=by)
        if by is not None:
            support.record_staff_change(
                by,
                payment.payer,
                context=context or support.Context(),
                on="payment",
                object_id=payment.pk,
                action="refund_recorded",
            )
        return payment


def resolve_anomaly(
    anomaly_id: Any, *, resolution: str, by: User, context: support.Context
) -> PaymentAnomaly:
    """Staff close an anomaly with what was done (refund made, gateway confirmed, ...):
    once, and in the audit trail."""
    text = resolution.strip()
    if not text:
        raise field_error("resolution", "resolution_required", _("Say what was done."))
    with transaction.atomic():
        anomaly = (
            PaymentAnomaly.objects.select_for_update(of=("self",))
            .select_related("payment__payer")
            .get(pk=anomaly_id)
        )
        if anomaly.resolved_at is not None:
            raise Conflict("anomaly_resolved", _("This anomaly was already resolved."))
        anomaly.resolution = text
        anomaly.resolved_at = timezone.now()
        anomaly.save(update_fields=["resolution", "resolved_at"])
        support.record_staff_change(
            by,
            anomaly.payment.payer if anomaly.payment is not None else None,
            context=context,
            on="payment_anomaly",
            object_id=anomaly.pk,
            action="resolved",
        )
        return anomaly
