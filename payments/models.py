"""Fee requests, the payments made against them, and what reconciliation found.

Amounts are whole Vietnamese đồng (integers) everywhere; the currency is VND.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class PaymentRequest(models.Model):
    """What is due on a dossier: a fee before submission, or the agency's request (status 6)."""

    class Source(models.TextChoices):
        SUBMISSION = "submission", _("Fee due at submission")
        AGENCY = "agency", _("Requested by the agency")

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("payment request status", "Open")
        PAID = "paid", pgettext_lazy("payment request status", "Paid")
        CLOSED = "closed", pgettext_lazy("payment request status", "Closed without online payment")

    dossier = models.ForeignKey(
        "dossiers.Dossier", on_delete=models.PROTECT, related_name="payment_requests"
    )
    source = models.CharField(max_length=12, choices=Source.choices)
    event_id = models.BigIntegerField(
        null=True, blank=True, unique=True, help_text="The dossier.payment_requested event."
    )
    amount = models.PositiveBigIntegerField(help_text="VND")
    lines = models.JSONField(
        default=list, help_text='[{"kind": "fee"|"charge"|"postage", "label": str, "amount": int}]'
    )
    description = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dossier"],
                condition=Q(source="submission"),
                name="payment_request_one_submission_fee",
            ),
            models.CheckConstraint(
                condition=Q(source="submission") | Q(event_id__isnull=False),
                name="payment_request_agency_has_event",
            ),
        ]

    def __str__(self) -> str:
        return f"request {self.pk} of {self.dossier_id}: {self.amount} VND ({self.status})"


class Payment(models.Model):
    """One attempt to pay a request through a gateway.

    Status only moves forward: pending → paid | failed | expired | cancelled, and
    paid → refunded. A second successful payment of the same request stays
    `paid` with `needs_refund` set: it is never counted (the partial unique
    constraint allows one counted payment per request).
    """

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("payment status", "Waiting for payment")
        PAID = "paid", pgettext_lazy("payment status", "Paid")
        FAILED = "failed", pgettext_lazy("payment status", "Failed")
        EXPIRED = "expired", pgettext_lazy("payment status", "Expired")
        CANCELLED = "cancelled", pgettext_lazy("payment status", "Cancelled")
        REFUNDED = "refunded", pgettext_lazy("payment status", "Refunded")

    # The only moves allowed (no backwards moves).
    MOVES: dict[str, frozenset[str]] = {
        "pending": frozenset({"paid", "failed", "expired", "cancelled"}),
        "paid": frozenset({"refunded"}),
        "failed": frozenset(),
        "expired": frozenset(),
        "cancelled": frozenset(),
        "refunded": frozenset(),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(PaymentRequest, on_delete=models.PROTECT, related_name="payments")
    dossier = models.ForeignKey("dossiers.Dossier", on_delete=models.PROTECT, related_name="+")
    payer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    gateway = models.CharField(max_length=20)
    order_ref = models.CharField(
        max_length=34, unique=True, help_text="Our order id at the gateway (vnp_TxnRef)."
    )
    amount = models.PositiveBigIntegerField(help_text="VND")
    currency = models.CharField(max_length=3, default="VND")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    checkout_url = models.TextField()
    expires_at = models.DateTimeField()
    gateway_reference = models.CharField(max_length=64, blank=True)
    bank_code = models.CharField(max_length=20, blank=True)
    failure_code = models.CharField(max_length=20, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    settled_by = models.CharField(
        max_length=8, blank=True, help_text="callback | return | query: what settled it first."
    )
    counted = models.BooleanField(
        default=False, help_text="This payment settles its request (at most one per request)."
    )
    needs_refund = models.BooleanField(default=False)
    refund_reason = models.CharField(max_length=40, blank=True)
    # Who recorded the refund in the admin (a key, so it is never cut like a text would be).
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    receipt_number = models.CharField(max_length=40, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["request"], condition=Q(counted=True), name="payment_counted_once"
            ),
            models.UniqueConstraint(
                fields=["request"], condition=Q(status="pending"), name="payment_one_pending"
            ),
            models.CheckConstraint(condition=Q(currency="VND"), name="payment_currency_vnd"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="payment_status_age")]

    def __str__(self) -> str:
        return f"payment {self.order_ref} {self.amount} VND ({self.status})"


class PaymentAnomaly(models.Model):
    """Something reconciliation must look at: money may have moved where we did not expect.

    Never deleted; `resolved_at` is set by staff once it is handled (refund made,
    gateway confirmed, ...).
    """

    class Kind(models.TextChoices):
        PAID_AFTER_EXPIRY = "paid_after_expiry", _("Paid after the payment expired")
        PAID_AFTER_CANCEL = "paid_after_cancel", _("Paid after the payment was cancelled")
        PAID_AFTER_FAILURE = "paid_after_failure", _("Paid after the payment failed")
        DUPLICATE_PAYMENT = "duplicate_payment", _("Request paid twice")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount differs from the amount due")
        REQUEST_CLOSED = "request_closed", _("Paid after the request was closed")
        STATUS_MISMATCH = "status_mismatch", _("Gateway and our records disagree")

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="anomalies"
    )
    gateway = models.CharField(max_length=20)
    order_ref = models.CharField(max_length=34)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    gateway_reference = models.CharField(max_length=64, blank=True)
    reported_amount = models.BigIntegerField(null=True, blank=True)
    reported_status = models.CharField(max_length=20, blank=True)
    source = models.CharField(max_length=8, help_text="callback | return | query | report")
    details = models.JSONField(default=dict, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "payment anomalies"
        constraints = [
            # Replays of the same gateway message add nothing.
            models.UniqueConstraint(
                fields=["gateway", "order_ref", "kind", "gateway_reference"],
                name="payment_anomaly_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.gateway}:{self.order_ref}"


class ReconciliationReport(models.Model):
    """The daily comparison of our payments with the gateway's answers."""

    day = models.DateField(unique=True)
    checked = models.PositiveIntegerField(default=0)
    mismatches = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"reconciliation {self.day}: {len(self.mismatches)} mismatch(es)"
