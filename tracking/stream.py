"""What a WebSocket subscription delivers next: replay and live, one code path.

The order of the log is (txid, id): the inserting transaction, then the
sequence id. Sequence ids alone are not safe as a cursor: transaction T1 can
take id 10 and commit after T2 took id 11 and committed, so a reader that saw
11 and moved its cursor past it would never see 10. PostgreSQL tells us which
transactions are over: every txid below `pg_snapshot_xmin(pg_current_snapshot())`
has committed or rolled back, and no new transaction can get a txid that low.
Events below that horizon are final; the stream only ever delivers final
events, in (txid, id) order, after its cursor. Events above the horizon are
held until the consumer looks again (on the next hint or tick).

Replaying after a resume and streaming live are the same query from the same
cursor, so the seam has neither gap nor duplicate.

An idle socket's heartbeat does not run that query: `may_have_news` first
probes the log's (txid, id) index for any event at or above the horizon of the
socket's last look, which is where anything it could send or hold must be.

The price: an event waits until every write transaction that started before
its own has ended, in the whole PostgreSQL cluster (the horizon is not per
table). Keep write transactions short (and set
`idle_in_transaction_session_timeout`), or live delivery lags behind them.

On SQLite (embedded default) txid is 0 and writers are serialised, so id order
is commit order and every committed event is final.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Max, Q, QuerySet
from django.utils import timezone, translation

from auth.models import DeviceSession, User
from dossiers.access import visible_dossiers
from tracking.audience import followed_dossiers
from tracking.models import DossierEvent
from tracking.payloads import EventFrame, ResyncReason
from tracking.texts import event_text

HORIZON_SQL = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Position:
    """A place in the log: after every event at or before (txid, id)."""

    txid: int
    id: int


@dataclass
class Subscription:
    """One socket's view: whose events, narrowed to a dossier or not, and how far."""

    user: User
    session_id: uuid.UUID
    dossier_id: uuid.UUID | None
    position: Position
    # Events after the cursor that the client already has: those committed but
    # not yet final when it connected, or the resume event's own transaction.
    seen: frozenset[int] = frozenset()
    held: bool = False
    # The horizon of the last look that found nothing more to send: every event
    # below it after the cursor has been sent (None: not looked yet, or SQLite).
    horizon: int | None = None

    @property
    def language(self) -> str:
        return self.user.language or settings.LANGUAGE_CODE


def _on_postgres() -> bool:
    return connection.vendor == "postgresql"


def horizon() -> int | None:
    """Every transaction with a smaller txid has ended (None: all are final)."""
    if not _on_postgres():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {HORIZON_SQL}")
        row = cursor.fetchone()
    return int(row[0])


def events_for(user: User, dossier_id: uuid.UUID | None = None) -> QuerySet[DossierEvent]:
    """What a socket of `user` carries: events of their own dossiers and of the
    organisations they watch; narrowed to one dossier, that dossier's if they may see it."""
    if dossier_id is None:
        return DossierEvent.objects.filter(dossier_id__in=followed_dossiers(user).values("pk"))
    return DossierEvent.objects.filter(
        dossier_id=dossier_id, dossier_id__in=visible_dossiers(user).values("pk")
    )


def _after(events: QuerySet[DossierEvent], position: Position) -> QuerySet[DossierEvent]:
    return events.filter(Q(txid__gt=position.txid) | Q(txid=position.txid, id__gt=position.id))


def live_position(user: User, dossier_id: uuid.UUID | None) -> tuple[Position, frozenset[int]]:
    """Where a socket that resumes nothing starts: with the events committed from now on.

    The cursor goes back to the horizon (transactions still open there may
    commit later), and the events already committed above it are marked seen.
    """
    current = horizon()
    if current is None:
        last = DossierEvent.objects.aggregate(last=Max("id"))["last"] or 0
        return Position(0, last), frozenset()
    committed = events_for(user, dossier_id).filter(txid__gte=current)
    return Position(current - 1, MAX_ID), frozenset(committed.values_list("id", flat=True))


def resume(
    user: User, last_event_id: int, dossier_id: uuid.UUID | None = None
) -> tuple[Position, frozenset[int]] | ResyncReason:
    """The cursor after `last_event_id`, or why the app must resync instead.

    The event must be one the user may see. When it is not final yet (the app
    learnt its id from REST while an older transaction was still open: the
    stream only sends final events), the cursor moves back to the horizon so
    the older transactions' events still come once they commit; the events
    already committed up to the resume point are skipped as seen.
    """
    # Any event the user may see is a valid position in the log.
    visible = DossierEvent.objects.filter(dossier_id__in=visible_dossiers(user).values("pk"))
    row = visible.filter(id=last_event_id).values_list("txid", "id", "created_at").first()
    if row is None:
        return "unknown_event"
    txid, event_id, created_at = row
    retention = dt.timedelta(seconds=settings.WS_RESUME_RETENTION_SECONDS)
    if created_at < timezone.now() - retention:
        return "expired"
    current = horizon()
    if current is not None and txid >= current:
        # Committed events up to the resume point count as seen; those still
        # invisible (their transaction is open) will come when they are final.
        seen = events_for(user, dossier_id).filter(
            Q(txid__gte=current, txid__lt=txid) | Q(txid=txid, id__lte=event_id)
        )
        return Position(current - 1, MAX_ID), frozenset(seen.values_list("id", flat=True))
    return Position(txid, event_id), frozenset()


def pull(subscription: Subscription) -> list[EventFrame]:
    """The next final events after the cursor, as frames; advances the cursor.

    Sets `subscription.held` when later events exist that are not final yet.
    """
    current = horizon()
    events = events_for(subscription.user, subscription.dossier_id)
    pending = _after(events, subscription.position)
    if subscription.seen:
        pending = pending.exclude(id__in=subscription.seen)
    final = pending if current is None else pending.filter(txid__lt=current)
    batch = list(final.select_related("dossier").order_by("txid", "id")[: settings.WS_REPLAY_BATCH])
    with translation.override(subscription.language):
        frames = [event_frame(event) for event in batch]
    if batch:
        subscription.position = Position(batch[-1].txid, batch[-1].id)
    if len(batch) < settings.WS_REPLAY_BATCH:
        subscription.held = current is not None and pending.filter(txid__gte=current).exists()
        subscription.horizon = current
    return frames


def may_have_news(subscription: Subscription) -> bool:
    """Whether a `pull` could find anything: False only when no event at all
    (anyone's) has been written since the last look that found nothing more.

    The cheap check of an idle socket's heartbeat (one index range probe, no
    join): events before the last look's horizon were final then, so they have
    been sent; anything `pull` could send or hold now is at or above it.
    """
    if subscription.held or subscription.horizon is None:
        return True
    return DossierEvent.objects.filter(txid__gte=subscription.horizon).exists()


def heartbeat_check(subscription: Subscription) -> tuple[bool, bool]:
    """At a heartbeat: (the session is still live, the log may hold news for it)."""
    if not session_is_live(subscription.session_id):
        return False, False
    return True, may_have_news(subscription)


def event_frame(event: DossierEvent) -> EventFrame:
    """The one documented shape of an event frame, texts in the active language."""
    return {
        "type": "event",
        "id": event.id,
        "event_type": event.type,
        "dossier_id": str(event.dossier_id),
        "dossier_code": event.dossier.code,
        "status": event.status_after,
        "status_before": event.status_before,
        "time": iso_time(event.created_at),
        "text": event_text(event.type, event.data),
        "data": dict(event.data or {}),
    }


def iso_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def session_is_live(session_id: uuid.UUID) -> bool:
    return DeviceSession.objects.filter(
        pk=session_id, revoked_at=None, user__is_active=True
    ).exists()


def load_session(session_id: uuid.UUID) -> DeviceSession | None:
    return (
        DeviceSession.objects.select_related("user")
        .filter(pk=session_id, revoked_at=None, user__is_active=True)
        .first()
    )


def may_see_dossier(user: User, dossier_id: uuid.UUID) -> bool:
    return visible_dossiers(user).filter(pk=dossier_id).exists()


def parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None
