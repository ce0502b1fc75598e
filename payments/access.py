"""Who may see which payment: 404 for anyone else (never 403: no existence leak); and
who, among those, may cancel it."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from auth.models import User
from backend.errors import NotFound
from dossiers.access import require_may_act_for, visible_dossiers
from payments.models import Payment


def visible_payments(user: User) -> QuerySet[Payment]:
    """Payments of the dossiers the user may see: their own, and their organisations'."""
    return Payment.objects.filter(dossier__in=visible_dossiers(user).values("pk"))


def access_payment(user: User, payment_id: uuid.UUID | str) -> Payment:
    try:
        key = uuid.UUID(str(payment_id))
    except ValueError as exc:
        raise NotFound() from exc
    payment = (
        visible_payments(user)
        .select_related("request", "dossier", "dossier__agency", "dossier__procedure", "payer")
        .filter(pk=key)
        .first()
    )
    if payment is None:
        raise NotFound()
    return payment


def require_may_cancel(user: User, payment: Payment) -> None:
    """Whoever started the payment, the dossier's applicant, and the owners and admins of
    its organisation may abandon it. The organisation's other members may pay (checkout
    hands them the payment already waiting) but not cancel a colleague's, who may be on
    the bank's page at that moment: 403 `not_payer`."""
    require_may_act_for(
        user,
        payment.dossier,
        code="not_payer",
        message=_(
            "Only whoever started this payment, the dossier's applicant and the "
            "organisation's owners and administrators can cancel it."
        ),
        made_by_id=payment.payer_id,
    )
