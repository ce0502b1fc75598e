"""Writing to the dossier event log, and the one list of event types.

The log belongs to the dossiers app, beside the dossiers it describes; the
tracking app only reads it (timeline, stream). `record_event` is called by
actions (dossiers, postal, ...) inside their transaction. It appends the
event, defers every subscriber's job (push notifications, ...) in that same
transaction, and publishes a realtime hint once the transaction commits. The
log is the truth; the hint only tells open sockets to look.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils.module_loading import import_string

from auth.models import User
from backend.jobs import defer_each
from backend.realtime import send_to_groups
from backend.row_writes import create_row
from dossiers.audience import dossier_group, recipients_for, user_group
from dossiers.event_types import EventType
from dossiers.models import Dossier, DossierEvent

__all__ = ["EventType", "publish_hint", "record_event"]

logger = logging.getLogger(__name__)


def record_event(
    dossier: Dossier,
    *,
    type: EventType,
    actor_type: str,
    status_before: int | None = None,
    status_after: int | None = None,
    actor_user: User | None = None,
    actor_label: str = "",
    message: str = "",
    data: dict[str, Any] | None = None,
) -> DossierEvent:
    """Append one event. The caller holds the dossier row lock (select_for_update, or
    the UPDATE that moved it)."""
    type = EventType(type)  # an unknown type fails here, before anything is written
    event = DossierEvent(
        dossier=dossier,
        organisation_id=dossier.organisation_id,  # the replay's index (a copy)
        agency_id=dossier.agency_id,  # the report's payment requests by agency (a copy)
        seq=_last_seq(dossier) + 1,
        type=type,
        status_before=status_before,
        status_after=status_after,
        actor_type=actor_type,
        actor_user=actor_user,
        actor_label=actor_label,
        message=message,
        data=data or {},
        # id: taken by the log's trigger in the INSERT (migration 0018)
    )
    # The ORM's INSERT, its SQL made once (on every dossier move; building it cost
    # more CPU than the rest of the event's writing).
    create_row(event)
    defer_each([import_string(path) for path in settings.EVENT_SUBSCRIBERS], event_id=event.id)
    recipients = sorted(str(user_id) for user_id in recipients_for(dossier))
    transaction.on_commit(lambda: publish_hint(event.id, str(dossier.id), recipients))
    return event


# The dossier's last event number (0 before its first), from the (dossier, seq) index.
# In SQL: on the path of every dossier move, the ORM's aggregate cost three to four
# times this statement (building the query, not running it).
_LAST_SEQ_SQL = "SELECT COALESCE(MAX(seq), 0) FROM tracking_dossierevent WHERE dossier_id = %s"


def _last_seq(dossier: Dossier) -> int:
    """The caller holds the dossier's lock: no other event of it can be written meanwhile."""
    dossier_id = DossierEvent._meta.get_field("dossier").get_db_prep_value(dossier.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(_LAST_SEQ_SQL, [dossier_id])
        (last,) = cursor.fetchone()
    return int(last)


def publish_hint(event_id: int, dossier_id: str, recipients: list[str]) -> None:
    """Tell each recipient's open sockets that event `event_id` exists.

    Best effort: if the channel layer (Redis) is down, the event is still in the
    log and sockets catch up when they resume from their last event id.
    """
    message = {"type": "dossier.event", "event_id": event_id, "dossier_id": dossier_id}
    # Sockets narrowed to this dossier joined its group after an access check.
    groups = [user_group(user_id) for user_id in recipients] + [dossier_group(dossier_id)]
    try:
        send_to_groups(groups, message)
    except Exception:  # the log stays the truth; never fail the request for a hint
        logger.warning("realtime hint for event %s not published", event_id, exc_info=True)
