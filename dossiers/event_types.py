"""The one list of dossier event types. Import it as `dossiers.events.EventType`.

It lives in this leaf module (no model imports) only so that `dossiers.models`
can use it for the field's choices while `dossiers.events` imports the models.
Everything that speaks about event types is keyed by it and checked against it
by tests: the timeline texts (tracking/texts.py), the push templates and the
explicit "no push" decisions (notifications/templates.py), the AsyncAPI
document and the push guide (mobile_api_docs/).
"""

from __future__ import annotations

from django.db import models


class EventType(models.TextChoices):
    # by the citizen
    DOSSIER_SUBMITTED = "dossier.submitted"
    DOSSIER_WITHDRAWN = "dossier.withdrawn"
    DOSSIER_SUPPLEMENT_SUBMITTED = "dossier.supplement_submitted"
    DOSSIER_RATED = "dossier.rated"
    # by the agency
    DOSSIER_ACCEPTED = "dossier.accepted"
    DOSSIER_REFUSED = "dossier.refused"
    DOSSIER_PROCESSING_STARTED = "dossier.processing_started"
    DOSSIER_SUPPLEMENT_REQUESTED = "dossier.supplement_requested"
    DOSSIER_PAYMENT_REQUESTED = "dossier.payment_requested"
    DOSSIER_COMPLETED = "dossier.completed"
    DOSSIER_HANDED_OVER = "dossier.handed_over"
    DOSSIER_STOPPED = "dossier.stopped"
    DOSSIER_APOLOGISED = "dossier.apologised"
    DOSSIER_RESULT_REVOKED = "dossier.result_revoked"
    # a paper of the dossier is another dossier's result, which its agency revoked
    DOSSIER_PAPER_REVOKED = "dossier.paper_revoked"
    # by the payments app, when the gateway confirms a payment the agency requested
    DOSSIER_PAYMENT_RECEIVED = "dossier.payment_received"
    # by the system (deadline monitoring)
    DOSSIER_OVERDUE = "dossier.overdue"
    DOSSIER_DEADLINE_AT_RISK = "dossier.deadline_at_risk"
    # by the postal flow (the citizen, the carrier, or the system)
    DELIVERY_BOOKED = "delivery.booked"
    DELIVERY_CANCELLED = "delivery.cancelled"
    DELIVERY_PICKED_UP = "delivery.picked_up"
    DELIVERY_IN_TRANSIT = "delivery.in_transit"
    DELIVERY_OUT_FOR_DELIVERY = "delivery.out_for_delivery"
    DELIVERY_DELIVERED = "delivery.delivered"
    DELIVERY_FAILED_ATTEMPT = "delivery.failed_attempt"
    DELIVERY_RETURNED = "delivery.returned"
