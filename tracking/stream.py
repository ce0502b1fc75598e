"""What a WebSocket subscription delivers next: replay and live, one code path.

The order of the log is (txid, id): the inserting transaction, then the
sequence id. Sequence ids alone are not safe as a cursor: transaction T1 can
take id 10 and commit after T2 took id 11 and committed, so a reader that saw
11 and moved its cursor past it would never see 10. PostgreSQL tells us which
transactions are over: every txid below `pg_snapshot_xmin(pg_current_snapshot())`
has committed or rolled back, and no new transaction can get a txid that low.
Events below that horizon are final; the stream only ever delivers final
events, in (txid, id) order, after its cursor. Events above the horizon are
held until the consumer looks again: on the next hint, or when the horizon has
passed the first held event's transaction (tracking/reader.py watches it with a
short back-off), or at the heartbeat.

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
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Max, Q, QuerySet
from django.utils import timezone, translation

from auth.models import DeviceSession, User
from backend.any_of import AnyOf
from backend.times import rfc3339
from dossiers.access import visible_dossiers, visible_to
from dossiers.audience import followed_dossiers, own_unwatched_dossiers, watched_organisations
from dossiers.models import Dossier, DossierEvent
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
    # The transaction of the first held event: it is final once the horizon is above it.
    held_txid: int | None = None
    # The horizon of the last look that found nothing more to send: every event
    # below it after the cursor has been sent (None: not looked yet, or SQLite).
    horizon: int | None = None
    # The SQL of `pull` and the audience's parameters, compiled on first use.
    pending_sql: tuple[str, tuple[Any, ...], tuple[Any, ...] | None] | None = field(
        default=None, repr=False
    )

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
    # An array, not `IN (subquery)`: the audience's events come from the
    # per-dossier index (dossier_event_audience_order), not a walk of the log.
    return DossierEvent.objects.filter(
        AnyOf("dossier_id", _audience(user, dossier_id).values("pk"))
    )


def _audience(user: User, dossier_id: uuid.UUID | None) -> QuerySet[Dossier]:
    if dossier_id is None:
        return followed_dossiers(user)
    return visible_dossiers(user).filter(pk=dossier_id)


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
    # The event by its key, then its dossier checked (a join on two primary keys),
    # not the user's dossiers first.
    visible = DossierEvent.objects.filter(visible_to(user, "dossier__"))
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
    (tracking.reader does the same on the socket's event loop.)
    """
    limit = settings.WS_REPLAY_BATCH
    current, rows = _pending(subscription, limit + 1)
    return advance(subscription, rows, limit, current)


def advance(
    subscription: Subscription, rows: list[EventRow], limit: int, current: int | None
) -> list[EventFrame]:
    """The frames of the leading final `rows` (at most `limit`); moves the cursor past them.

    The rows are the events after the cursor in log order, each marked final or
    not against `current`, the horizon of the query's own snapshot (None on
    SQLite). Final events come first (the order is by txid), and a row that is
    not final means events are held.
    """
    batch: list[EventRow] = []
    for row in rows[:limit]:
        if not row.final:
            break
        batch.append(row)
    with translation.override(subscription.language):
        frames = [event_frame(row) for row in batch]
    if batch:
        subscription.position = Position(batch[-1].txid, batch[-1].id)
    waiting = [row.txid for row in rows if not row.final]
    subscription.held = bool(waiting)
    subscription.held_txid = min(waiting) if waiting else None
    # Every final event below `current` after the old cursor is in this batch
    # unless the batch is full: only then is there more to read below it.
    subscription.horizon = current if len(batch) < limit else None
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


@dataclass(frozen=True)
class EventRow:
    """What a frame needs of one event, and whether the event is final."""

    id: int
    txid: int
    type: str
    status_before: int | None
    status_after: int | None
    created_at: dt.datetime
    data: dict[str, Any]
    dossier_id: uuid.UUID
    dossier_code: str | None
    final: bool

    @classmethod
    def of(cls, row: Sequence[Any]) -> EventRow:
        """From a row of PENDING_SQL (after its leading horizon column)."""
        return cls(
            id=row[1],
            txid=row[2],
            type=row[3],
            status_before=row[4],
            status_after=row[5],
            created_at=row[6],
            data=_json(row[7]),
            dossier_id=row[8],
            dossier_code=row[9],
            final=row[10],
        )


def rows_of(found: Sequence[Sequence[Any]]) -> tuple[int | None, list[EventRow]]:
    """PENDING_SQL's result: the horizon of its snapshot and the events, if any.

    The query always returns at least one row, so the horizon is known even
    when there is no event (that row's event columns are NULL).
    """
    if not found:
        return None, []
    return int(found[0][0]), [EventRow.of(row) for row in found if row[1] is not None]


# The events after a cursor in log order, for PostgreSQL: this runs on every
# hint for every open socket, so it is one fixed SQL string with the audience
# (dossiers.audience) compiled once per socket, not a queryset compiled on each
# call: the ORM's compiler took longer than PostgreSQL took to answer.
#
# The audience is an array (backend/any_of.py), so the events come from the
# per-dossier index (dossier, txid, id), a few rows per dossier, whatever the
# cursor's age: `IN (subquery)` walked the whole log after the cursor instead.
#
# Its first column is the horizon of the query's snapshot: one row with NULL
# event columns comes back when there is no event, so a look that finds
# nothing still records how far it looked (`may_have_news`).
PENDING_SQL = """
SELECT h.horizon, p.id, p.txid, p.type, p.status_before, p.status_after, p.created_at,
       p.data, p.dossier_id, p.code, p.txid < h.horizon AS final
FROM (SELECT {horizon} AS horizon) h
LEFT JOIN LATERAL (
    SELECT e.id, e.txid, e.type, e.status_before, e.status_after, e.created_at, e.data,
           e.dossier_id, d.code
    FROM {events} e JOIN {dossiers} d ON d.id = e.dossier_id
    WHERE e.dossier_id = ANY(ARRAY({audience}))
      AND (e.txid, e.id) > (%s, %s)
      AND e.id <> ALL(%s::bigint[])
    ORDER BY e.txid, e.id
    LIMIT %s
) p ON true
ORDER BY p.txid, p.id
"""


# A socket that follows everything of its user (no dossier named): its own
# dossiers by dossier as above, and each watched organisation's events from the
# organisation's own index in log order (dossier_event_org_order on the copy of
# the dossier's organisation), at most `limit` from each, merged. The events of
# a large organisation's thousands of dossiers after a cursor months back are
# then a bounded index range each, not tens of thousands of rows to sort. The
# two parts do not overlap (the first leaves out dossiers of watched
# organisations); the seen events are left out inside each part, before its
# LIMIT, so no part's next event can be skipped.
FOLLOWED_SQL = """
SELECT h.horizon, p.id, p.txid, p.type, p.status_before, p.status_after, p.created_at,
       p.data, p.dossier_id, p.code, p.txid < h.horizon AS final
FROM (SELECT {horizon} AS horizon) h
LEFT JOIN LATERAL (
    -- The dossier's code by its key, per delivered event (a join could hash every dossier).
    SELECT k.*, (SELECT d.code FROM {dossiers} d WHERE d.id = k.dossier_id) AS code
    FROM (
        SELECT u.* FROM (
            (SELECT {columns} FROM {events} e
             WHERE e.dossier_id = ANY(ARRAY({own}))
               AND (e.txid, e.id) > (%s, %s)
               AND e.id <> ALL(%s::bigint[])
             ORDER BY e.txid, e.id
             LIMIT %s)
            UNION ALL
            SELECT x.* FROM unnest(ARRAY({organisations})) AS o(organisation_id)
            CROSS JOIN LATERAL (
                SELECT {columns} FROM {events} e
                WHERE e.organisation_id = o.organisation_id
                  AND (e.txid, e.id) > (%s, %s)
                  AND e.id <> ALL(%s::bigint[])
                ORDER BY e.txid, e.id
                LIMIT %s
            ) x
        ) u
        ORDER BY u.txid, u.id
        LIMIT %s
    ) k
) p ON true
ORDER BY p.txid, p.id
"""
EVENT_COLUMNS = (
    "e.id, e.txid, e.type, e.status_before, e.status_after, e.created_at, e.data, e.dossier_id"
)


def pending_query(subscription: Subscription, limit: int) -> tuple[str, tuple[Any, ...]]:
    """PENDING_SQL (FOLLOWED_SQL for a socket not narrowed to a dossier) and its
    parameters for this socket now (PostgreSQL only).

    The SQL is compiled on the first call (sync code: the compiler may ask the
    database connection about the server); later calls only fill in the cursor.
    """
    if subscription.pending_sql is None:
        subscription.pending_sql = _compile_pending(subscription)
    sql, own_params, organisation_params = subscription.pending_sql
    position = subscription.position
    seen = sorted(subscription.seen)
    after = (position.txid, position.id, seen, limit)
    if organisation_params is None:
        return sql, (*own_params, *after)
    return sql, (*own_params, *after, *organisation_params, *after, limit)


def _compile_pending(
    subscription: Subscription,
) -> tuple[str, tuple[Any, ...], tuple[Any, ...] | None]:
    names = {
        "horizon": HORIZON_SQL,
        "events": DossierEvent._meta.db_table,
        "dossiers": Dossier._meta.db_table,
    }
    if subscription.dossier_id is not None:
        audience = _audience(subscription.user, subscription.dossier_id).values("pk")
        audience_sql, audience_params = audience.query.sql_with_params()
        return PENDING_SQL.format(audience=audience_sql, **names), tuple(audience_params), None
    own_sql, own_params = (
        own_unwatched_dossiers(subscription.user).values("pk").query.sql_with_params()
    )
    organisations_sql, organisation_params = watched_organisations(
        subscription.user
    ).query.sql_with_params()
    sql = FOLLOWED_SQL.format(
        columns=EVENT_COLUMNS, own=own_sql, organisations=organisations_sql, **names
    )
    return sql, tuple(own_params), tuple(organisation_params)


def _pending(subscription: Subscription, limit: int) -> tuple[int | None, list[EventRow]]:
    """The horizon (None on SQLite) and up to `limit` events after the cursor that
    the client has not seen, in log order."""
    if not _on_postgres():
        # SQLite (embedded default): every committed event is final.
        events = _after(
            events_for(subscription.user, subscription.dossier_id), subscription.position
        )
        if subscription.seen:
            events = events.exclude(id__in=subscription.seen)
        return None, [
            EventRow(
                id=event.id,
                txid=event.txid,
                type=event.type,
                status_before=event.status_before,
                status_after=event.status_after,
                created_at=event.created_at,
                data=event.data,
                dossier_id=event.dossier_id,
                dossier_code=event.dossier.code,
                final=True,
            )
            for event in events.select_related("dossier").order_by("txid", "id")[:limit]
        ]
    sql, params = pending_query(subscription, limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return rows_of(cursor.fetchall())


def _json(value: Any) -> Any:
    """A jsonb column read by hand: Django's psycopg setup hands it over as text."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def event_frame(row: EventRow) -> EventFrame:
    """The one documented shape of an event frame, texts in the active language."""
    return {
        "type": "event",
        "id": row.id,
        "event_type": row.type,
        "dossier_id": str(row.dossier_id),
        "dossier_code": row.dossier_code,
        "status": row.status_after,
        "status_before": row.status_before,
        "time": iso_time(row.created_at),
        "text": event_text(row.type, row.data),
        "data": dict(row.data or {}),
    }


def iso_time(moment: dt.datetime) -> str:
    return rfc3339(moment)


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
