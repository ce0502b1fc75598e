"""The event types this app writes or reacts to, in one place.

The dossier event log (and its enumeration of types) belongs to `dossiers`;
these are the strings of that vocabulary that payments uses. When the log's
enumeration lands, these names map one to one onto it.
"""

from __future__ import annotations

# Written through dossiers.lifecycle.record_payment when a requested fee is paid.
PAYMENT_RECEIVED = "dossier.payment_received"
# Reacted to (settings.EVENT_SUBSCRIBERS -> payments.tasks.on_dossier_event).
PAYMENT_REQUESTED = "dossier.payment_requested"
# A fee request ends without an online payment when the dossier moves on anyway:
# the agency continued processing (paid at the counter), finished, or stopped it,
# or the citizen withdrew.
REQUEST_CLOSING = frozenset(
    {
        "dossier.processing_started",
        "dossier.completed",
        "dossier.stopped",
        "dossier.withdrawn",
        "dossier.refused",
    }
)
