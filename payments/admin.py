"""Payments in the admin: read-only records, anomalies to resolve, the daily reports.

Statuses change only through payments.actions (callbacks, reconciliation); the
admin never edits a payment's fields. Staff record a refund the gateway made,
and close an anomaly with what was done. Who sees which rows (`dossiers.admin_scope`):
agency officers the requests, payments and anomalies of the dossiers they handle;
support staff all of them (on the support permission alone), read-only, to answer
"I paid but the app says unpaid" and to record the refunds the gateway made (with
the change permission), each one they open an audited look-up of the citizen, as for
superusers. A refund recorded and an anomaly resolved (once: no one rewrites what was
done, nor deletes an anomaly) are staff changes in the audit trail. A
checkout URL carries the payer's IP address (VNPay's `vnp_IpAddr`): only superusers
see it whole. Staff other than superusers find a dossier's payments only with its
whole code (support staff: an audited look-up). The daily reconciliation reports
cover every agency's payments: superusers only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from auth.admin_roles import ReadOnlyAdmin, SuperuserOnlyAdmin, support_context
from auth.models import User
from backend.errors import ApiError
from dossiers.admin_scope import OfficerOrSupportAdmin
from payments import actions
from payments.models import Payment, PaymentAnomaly, PaymentRequest, ReconciliationReport


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


@admin.register(PaymentRequest)
class PaymentRequestAdmin(OfficerOrSupportAdmin, ReadOnlyAdmin):
    list_display = ("dossier", "source", "amount", "status", "created_at", "paid_at")
    list_filter = ("source", "status")
    raw_id_fields = ("dossier",)
    account_paths = ("dossier__applicant",)
    audit_by = "payment_request"


@admin.register(Payment)
class PaymentAdmin(OfficerOrSupportAdmin, ReadOnlyAdmin):
    list_display = (
        "order_ref",
        "gateway",
        "amount",
        "status",
        "counted",
        "needs_refund",
        "receipt_number",
        "created_at",
    )
    list_filter = ("gateway", "status", "needs_refund", "counted")
    search_fields = ("order_ref", "gateway_reference", "receipt_number")
    searches_by_dossier_code = True
    search_help_text = _(
        "Order reference, gateway reference, receipt number, dossier code, or the payer's "
        "phone number only whole. Superusers: any part of the others, each search "
        "audited. Other staff: a code only whole (support staff: an audited look-up, as "
        "by phone)."
    )
    raw_id_fields = ("request", "dossier", "payer")
    actions = ["record_refund"]
    account_paths = ("payer",)
    audit_by = "payment"
    masked_fields = {"checkout_url": "masked_checkout_url"}

    @admin.display(description=_("checkout URL"))
    def masked_checkout_url(self, obj: Payment) -> str:
        # The gateway's page without its query (the payer's IP address, the signature).
        parts = urlsplit(obj.checkout_url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}?…" if parts.query else obj.checkout_url

    def has_record_refund_permission(self, request: HttpRequest) -> bool:
        # The rows are never edited here, but recording a refund is a change: "view"
        # is not enough (ReadOnlyAdmin's has_change_permission says no to everyone).
        return request.user.has_perm("payments.change_payment")

    @admin.action(
        description="Record that the gateway refunded these paid payments",
        permissions=["record_refund"],
    )
    def record_refund(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        # Checked again here: an action runs for whoever reaches the change list.
        if not self.has_record_refund_permission(request):
            raise PermissionDenied
        staff = _user(request)
        done = 0
        for payment in queryset:
            try:
                actions.mark_refunded(payment.pk, by=staff, context=support_context(request))
                done += 1
            except ApiError:
                self.message_user(
                    request, f"{payment.order_ref}: not paid, not refunded", messages.WARNING
                )
        self.message_user(request, f"{done} payment(s) recorded as refunded")


@admin.register(PaymentAnomaly)
class PaymentAnomalyAdmin(OfficerOrSupportAdmin):
    list_display = ("kind", "gateway", "order_ref", "reported_amount", "detected_at", "resolved_at")
    list_filter = ("kind", "gateway", "resolved_at")
    search_fields = ("order_ref", "gateway_reference")
    search_help_text = _(
        "Any part of the order or gateway reference, or the payer's phone number only "
        "whole. A superuser's search is audited, as is support staff's by phone."
    )
    raw_id_fields = ("payment",)
    readonly_fields = (
        "payment",
        "gateway",
        "order_ref",
        "kind",
        "gateway_reference",
        "reported_amount",
        "reported_status",
        "source",
        "details",
        "detected_at",
        "resolved_at",
    )
    fields = (*readonly_fields, "resolution")
    # An anomaly of no known payment (an unknown order): superusers and support only.
    dossier_path = "payment__dossier"
    account_paths = ("payment__payer",)
    audit_by = "payment_anomaly"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # never deleted: resolved

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        # Resolved once, by `actions.resolve_anomaly`: what was done is not rewritten.
        resolved = obj is not None and obj.resolved_at is not None
        return (*fields, "resolution") if resolved else fields

    def save_model(
        self, request: HttpRequest, obj: PaymentAnomaly, form: Any, change: bool
    ) -> None:
        # Only `resolution` is editable, on an open anomaly: closing it is the action's
        # (once, with who in the audit trail); a blank one leaves it open.
        if "resolution" not in form.changed_data or not obj.resolution.strip():
            return
        try:
            actions.resolve_anomaly(
                obj.pk,
                resolution=obj.resolution,
                by=_user(request),
                context=support_context(request),
            )
        except ApiError as exc:
            self.message_user(request, exc.message, messages.ERROR)


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(SuperuserOnlyAdmin, ReadOnlyAdmin):
    list_display = ("day", "checked", "created_at")
    # The day's payments by id, order reference and amount: no citizen is shown, so
    # opening a report is no look-up.
    account_paths = ()
