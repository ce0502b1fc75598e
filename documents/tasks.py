"""Subscriber to dossier events (settings.EVENT_SUBSCRIBERS), and periodic clean-up."""

from __future__ import annotations

from procrastinate.contrib.django import app

from backend.jobs import RETRY_ON_INFRASTRUCTURE
from documents import wallet
from dossiers.models import DossierEvent, ResultDocument


@app.task(queue="documents", name="documents.on_dossier_event", retry=RETRY_ON_INFRASTRUCTURE)
def on_dossier_event(event_id: int) -> None:
    """A completed dossier's signed result goes into its holder's wallet."""
    event = DossierEvent.objects.filter(pk=event_id).only("type", "data").first()
    if event is None or event.type != "dossier.completed":
        return
    code = (event.data or {}).get("verification_code")
    if not code:
        return
    result = ResultDocument.objects.filter(verification_code=code).only("pk").first()
    if result is not None:
        wallet.add_issued_result(result.pk)


@app.periodic(cron="17 3 * * *")
@app.task(queue="maintenance", name="documents.sweep_orphan_files", retry=RETRY_ON_INFRASTRUCTURE)
def sweep_orphan_files(timestamp: int) -> int:
    """Wallet files that neither a wallet item nor an attachment refers to any more."""
    return len(wallet.sweep_orphan_files())
