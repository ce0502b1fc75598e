"""Reconciliation: ask the gateway about what we are unsure of, and compare records.

- `settle_stale_pending`: every payment pending longer than
  PAYMENT_RECONCILE_AFTER_MINUTES is queried at its gateway and settled with the
  answer (a lost callback ends here); one the gateway does not know, or still
  calls pending, past its expiry, expires.
- `daily_report`: every payment created on a day is compared with the
  gateway's record; disagreements and the open anomalies are listed in a
  `ReconciliationReport` (one per day, rewritten if run again).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from payments import actions
from payments.gateways import GatewayError, get_gateway
from payments.models import Payment, PaymentAnomaly, ReconciliationReport

logger = logging.getLogger(__name__)


def settle_stale_pending(now: dt.datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    cutoff = now - dt.timedelta(minutes=settings.PAYMENT_RECONCILE_AFTER_MINUTES)
    counts = {"checked": 0, "settled": 0, "expired": 0, "unreachable": 0}
    stale = Payment.objects.filter(status=Payment.Status.PENDING, created_at__lte=cutoff)
    for payment in stale.order_by("created_at")[: settings.PAYMENT_RECONCILE_BATCH]:
        counts["checked"] += 1
        try:
            result = get_gateway(payment.gateway).query(payment.order_ref, payment.created_at)
        except GatewayError as exc:
            counts["unreachable"] += 1
            logger.warning(
                "reconciliation: %s query failed for a payment: %s", payment.gateway, exc
            )
            continue
        if result.outcome in ("paid", "failed", "cancelled"):
            actions.settle(payment.gateway, result, source="query")
            counts["settled"] += 1
        elif payment.expires_at <= now and actions.expire_payment(payment.pk):
            counts["expired"] += 1
    return counts


def daily_report(day: dt.date) -> ReconciliationReport:
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = start + dt.timedelta(days=1)
    mismatches: list[dict[str, Any]] = []
    payments = Payment.objects.filter(created_at__gte=start, created_at__lt=end).order_by(
        "created_at"
    )
    checked = 0
    for payment in payments:
        checked += 1
        entry = {
            "payment_id": str(payment.pk),
            "order_ref": payment.order_ref,
            "gateway": payment.gateway,
            "our_status": payment.status,
            "our_amount": payment.amount,
        }
        try:
            result = get_gateway(payment.gateway).query(payment.order_ref, payment.created_at)
        except GatewayError as exc:
            mismatches.append({**entry, "problem": "gateway_unreachable", "detail": str(exc)})
            continue
        theirs = {"paid": "paid", "failed": "failed", "cancelled": "cancelled"}.get(
            result.outcome, "unpaid"
        )
        statuses: dict[str, str] = {
            Payment.Status.PAID: "paid",
            Payment.Status.REFUNDED: "paid",
            Payment.Status.FAILED: "failed",
            Payment.Status.CANCELLED: "cancelled",
        }
        ours = statuses.get(payment.status, "unpaid")
        paid_mismatch = (theirs == "paid") != (ours == "paid")
        if paid_mismatch:
            mismatches.append(
                {
                    **entry,
                    "problem": "status",
                    "gateway_status": result.outcome,
                    "gateway_amount": result.amount,
                    "gateway_reference": result.gateway_reference,
                }
            )
        elif theirs == "paid" and result.amount != payment.amount:
            mismatches.append(
                {
                    **entry,
                    "problem": "amount",
                    "gateway_amount": result.amount,
                    "gateway_reference": result.gateway_reference,
                }
            )
        elif payment.needs_refund and payment.status == Payment.Status.PAID:
            mismatches.append({**entry, "problem": "refund_due", "reason": payment.refund_reason})
    for anomaly in PaymentAnomaly.objects.filter(resolved_at__isnull=True).order_by("detected_at"):
        mismatches.append(
            {
                "anomaly_id": anomaly.pk,
                "order_ref": anomaly.order_ref,
                "gateway": anomaly.gateway,
                "problem": f"anomaly:{anomaly.kind}",
                "reported_amount": anomaly.reported_amount,
                "gateway_reference": anomaly.gateway_reference,
            }
        )
    report, _created = ReconciliationReport.objects.update_or_create(
        day=day, defaults={"checked": checked, "mismatches": mismatches}
    )
    if mismatches:
        logger.warning("reconciliation %s: %d mismatch(es)", day, len(mismatches))
    return report
