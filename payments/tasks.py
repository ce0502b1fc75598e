"""The subscriber to dossier events and the periodic reconciliation jobs."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone
from procrastinate.contrib.django import app

from backend.jobs import RETRY_ON_INFRASTRUCTURE
from dossiers.events import EventType
from dossiers.models import DossierEvent
from payments import actions, reconciliation

# A fee request ends without an online payment when the dossier moves on anyway:
# the agency continued processing (paid at the counter), finished, refused or
# stopped it, or the citizen withdrew.
REQUEST_CLOSING = frozenset(
    {
        EventType.DOSSIER_PROCESSING_STARTED,
        EventType.DOSSIER_COMPLETED,
        EventType.DOSSIER_STOPPED,
        EventType.DOSSIER_WITHDRAWN,
        EventType.DOSSIER_REFUSED,
    }
)


@app.task(queue="payments", name="payments.on_dossier_event", retry=RETRY_ON_INFRASTRUCTURE)
def on_dossier_event(event_id: int) -> None:
    """Subscriber to every dossier event (settings.EVENT_SUBSCRIBERS).

    An agency's payment request becomes a fee request the citizen can pay; a
    dossier that moves on from status 6 without an online payment closes it.
    """
    event = DossierEvent.objects.filter(pk=event_id).first()
    if event is None:
        return
    if event.type == EventType.DOSSIER_PAYMENT_REQUESTED:
        actions.request_from_event(event)
    elif event.type in REQUEST_CLOSING and event.status_before == 6:
        actions.close_open_requests(event.dossier_id, reason=event.type)


@app.periodic(cron=settings.PAYMENT_RECONCILE_CRON)
@app.task(queue="payments", name="payments.reconcile_pending", retry=RETRY_ON_INFRASTRUCTURE)
def reconcile_pending(timestamp: int) -> dict[str, int]:
    """Settle payments whose callback never came (see payments.reconciliation)."""
    return reconciliation.settle_stale_pending()


@app.periodic(cron=settings.PAYMENT_REPORT_CRON)
@app.task(queue="payments", name="payments.daily_report", retry=RETRY_ON_INFRASTRUCTURE)
def daily_report(timestamp: int) -> int:
    """Yesterday's comparison of our payments with the gateway's records."""
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    return len(reconciliation.daily_report(yesterday).mismatches)
