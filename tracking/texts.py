"""What each dossier event says to the citizen, in Vietnamese and English.

One text per event type (`dossiers.events.EventType`; a test fails when a type
has none, or no Vietnamese translation); the stream, the timeline and (through
the same function) anything else that shows an event use it. Translations live
in locale/vi; call `event_text` with the wanted language active, or
`event_text_in` with the language.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dossiers.events import EventType

EVENT_TEXTS: dict[str, Promise] = {
    # by the citizen
    EventType.DOSSIER_SUBMITTED: _("Dossier submitted."),
    EventType.DOSSIER_WITHDRAWN: _("You withdrew the dossier."),
    EventType.DOSSIER_SUPPLEMENT_SUBMITTED: _("You sent the requested documents."),
    EventType.DOSSIER_RATED: _("You rated the service. Thank you."),
    # by the agency
    EventType.DOSSIER_ACCEPTED: _("The agency accepted the dossier and issued a receipt."),
    EventType.DOSSIER_REFUSED: _("The agency refused the dossier at reception."),
    EventType.DOSSIER_PROCESSING_STARTED: _("The agency started processing the dossier."),
    EventType.DOSSIER_SUPPLEMENT_REQUESTED: _("The agency asks you to add or correct documents."),
    EventType.DOSSIER_PAYMENT_REQUESTED: _("The agency asks you to pay the fees."),
    EventType.DOSSIER_COMPLETED: _("The result is ready."),
    EventType.DOSSIER_HANDED_OVER: _("The result was handed over."),
    EventType.DOSSIER_STOPPED: _("The agency stopped processing the dossier."),
    EventType.DOSSIER_APOLOGISED: _(
        "The agency apologised for the delay and set a new appointment date."
    ),
    EventType.DOSSIER_RESULT_REVOKED: _("The agency revoked the electronic result."),
    EventType.DOSSIER_PAPER_REVOKED: _(
        "A paper of this dossier is a result its agency revoked: replace it."
    ),
    # by the payments app
    EventType.DOSSIER_PAYMENT_RECEIVED: _("Your payment was received; processing continues."),
    # by the system
    EventType.DOSSIER_OVERDUE: _("The dossier is past its appointment date."),
    EventType.DOSSIER_DEADLINE_AT_RISK: _("The appointment date is close."),
    # by the postal flow
    EventType.DELIVERY_BOOKED: _("Delivery by post booked."),
    EventType.DELIVERY_CANCELLED: _("Delivery by post cancelled."),
    EventType.DELIVERY_PICKED_UP: _("The postal service picked up the parcel."),
    EventType.DELIVERY_IN_TRANSIT: _("The parcel is on its way."),
    EventType.DELIVERY_OUT_FOR_DELIVERY: _("The parcel is out for delivery."),
    EventType.DELIVERY_DELIVERED: _("The parcel was delivered."),
    EventType.DELIVERY_FAILED_ATTEMPT: _(
        "The delivery attempt failed; the postal service will try again."
    ),
    EventType.DELIVERY_RETURNED: _("The parcel was returned."),
}

HANDED_OVER_TEXTS: dict[str, Promise] = {
    "in_person": _("The result was handed over in person."),
    "post": _("The result was sent by post."),
    "electronic": _("The result was sent electronically."),
}

FALLBACK_TEXT = _("The dossier was updated.")


def event_text(event_type: str, data: dict[str, Any] | None = None) -> str:
    """The citizen-facing sentence for an event, in the active language."""
    if event_type == EventType.DOSSIER_HANDED_OVER:
        method = str((data or {}).get("method", ""))
        if method in HANDED_OVER_TEXTS:
            return str(HANDED_OVER_TEXTS[method])
    text = EVENT_TEXTS.get(event_type)
    return str(text if text is not None else FALLBACK_TEXT)


# (language, event type, handing-over method) -> the sentence: the stream's frames take
# it from here, not from a translation activated for each batch (Django's activation
# and the lazy text's lookup cost more than the rest of the frame's text).
_TEXTS_IN: dict[tuple[str, str, str], str] = {}


def event_text_in(language: str, event_type: str, data: dict[str, Any] | None = None) -> str:
    """`event_text` in `language`, computed once per language and text."""
    method = ""
    if event_type == EventType.DOSSIER_HANDED_OVER:
        method = str((data or {}).get("method", ""))
        if method not in HANDED_OVER_TEXTS:
            method = ""
    key = (language, event_type, method)
    text = _TEXTS_IN.get(key)
    if text is None:
        with translation.override(language):
            text = event_text(event_type, {"method": method} if method else None)
        # Bounded by the languages, event types and methods the code knows, plus
        # whatever unknown types the log holds (each reads as the fallback).
        _TEXTS_IN[key] = text
    return text
