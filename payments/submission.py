"""Fees paid when submitting (procedure `fee_timing` "before", wholly online).

`dossiers.actions.submit_dossier` runs every check of `settings.SUBMISSION_CHECKS`
on the locked draft before it submits it; this one makes the submission of such a
procedure wait for its fee. Procedures whose fee is paid when the result is
received (`fee_timing` "after") are paid on the agency's request (status 6).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from backend.errors import Conflict
from dossiers.models import Dossier
from payments.actions import submission_fee_due
from payments.amounts import vnd_for_reader
from payments.models import PaymentRequest


def fee_paid_before_submission(dossier: Dossier) -> None:
    """409 `payment_required` while the fee due at submission is not paid."""
    if not submission_fee_due(dossier):
        return
    paid = PaymentRequest.objects.filter(
        dossier=dossier,
        source=PaymentRequest.Source.SUBMISSION,
        status=PaymentRequest.Status.PAID,
    ).exists()
    if paid:
        return
    amount = dossier.procedure.fee_amount
    raise Conflict(
        "payment_required",
        _("Pay the fee of %(amount)s before submitting.") % {"amount": vnd_for_reader(amount)},
        details={
            "amount": amount,
            "currency": "VND",
            "due_url": f"/api/v1/payments/dossiers/{dossier.pk}/due",
            "checkout_url": f"/api/v1/payments/dossiers/{dossier.pk}/checkout",
        },
    )
