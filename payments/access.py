"""Who may see which payment: 404 for anyone else (never 403: no existence leak)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from auth.models import User
from backend.errors import NotFound
from dossiers.access import visible_dossiers
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
