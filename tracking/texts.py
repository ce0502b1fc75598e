"""What each dossier event says to the citizen, in Vietnamese and English.

One text per event type of the shared vocabulary (BRIEF.md); the stream, the
timeline and (through the same function) anything else that shows an event use
it. Translations live in locale/vi; call with the wanted language active.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

EVENT_TEXTS: dict[str, Promise] = {
    # by the citizen
    "dossier.submitted": _("Dossier submitted."),
    "dossier.withdrawn": _("You withdrew the dossier."),
    "dossier.supplement_submitted": _("You sent the requested documents."),
    "dossier.rated": _("You rated the service. Thank you."),
    # by the agency
    "dossier.accepted": _("The agency accepted the dossier and issued a receipt."),
    "dossier.refused": _("The agency refused the dossier at reception."),
    "dossier.processing_started": _("The agency started processing the dossier."),
    "dossier.supplement_requested": _("The agency asks you to add or correct documents."),
    "dossier.payment_requested": _("The agency asks you to pay the fees."),
    "dossier.completed": _("The result is ready."),
    "dossier.handed_over": _("The result was handed over."),
    "dossier.stopped": _("The agency stopped processing the dossier."),
    "dossier.apologised": _("The agency apologised for the delay and set a new appointment date."),
    # by the payments app
    "dossier.payment_received": _("Your payment was received; processing continues."),
    # by the system
    "dossier.overdue": _("The dossier is past its appointment date."),
    "dossier.deadline_at_risk": _("The appointment date is close."),
    # by the postal flow
    "delivery.booked": _("Delivery by post booked."),
    "delivery.cancelled": _("Delivery by post cancelled."),
    "delivery.picked_up": _("The postal service picked up the parcel."),
    "delivery.in_transit": _("The parcel is on its way."),
    "delivery.out_for_delivery": _("The parcel is out for delivery."),
    "delivery.delivered": _("The parcel was delivered."),
    "delivery.failed_attempt": _("The delivery attempt failed; the postal service will try again."),
    "delivery.returned": _("The parcel was returned."),
}

HANDED_OVER_TEXTS: dict[str, Promise] = {
    "in_person": _("The result was handed over in person."),
    "post": _("The result was sent by post."),
    "electronic": _("The result was sent electronically."),
}

FALLBACK_TEXT = _("The dossier was updated.")


def event_text(event_type: str, data: dict[str, Any] | None = None) -> str:
    """The citizen-facing sentence for an event, in the active language."""
    if event_type == "dossier.handed_over":
        method = str((data or {}).get("method", ""))
        if method in HANDED_OVER_TEXTS:
            return str(HANDED_OVER_TEXTS[method])
    text = EVENT_TEXTS.get(event_type)
    return str(text if text is not None else FALLBACK_TEXT)
