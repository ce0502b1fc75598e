"""What a WebSocket subscription delivers next: replay and live, one code path.

The order of the log is the event id. Ids come from a sequence and are not
safe as a cursor on their own: transaction T1 can take id 10 and commit after
T2 took id 11 and committed, so a reader that saw 11 and moved its cursor past
it would never see 10. So the stream only delivers *final* events, in id
order, after its cursor: an event is final once every smaller id is settled,
committed or never to be (a rolled-back insert leaves a gap for good).

The process keeps how far the log is settled (`SETTLED`). Each read of the log
extends it in the read's own snapshot: the ids after it that are visible with
no gap between them are committed, so they are settled (the usual case: one
writer at a time, or writers that commit in id order, wait for nothing). A gap
is an id some transaction holds (its event commits later) or a rolled-back
one. Ids after a gap are held until the gap fills, which the same reads see,
or until every transaction that could hold it has ended: a probe reads the
sequence's last value, then which event writers are running; once those have
all ended, every id up to that value is settled (`Probe`; an event writer
takes a shared advisory lock before its id and holds it to its end: the log's
trigger, dossiers migration 0018, so `pg_locks` lists them).
tracking/reader.py watches held events with a short back-off.

So a frame waits only for older *event* writers still open, not for every
transaction of the PostgreSQL cluster (the stream's order was (txid, id)
before, final below the cluster-wide horizon: any long write transaction,
in any database of the cluster, held every frame back). A process's first
read of the log settles it once that way (`settle`), waiting for the event
writers open at that moment.

Replaying after a resume and streaming live are the same query from the same
cursor, so the seam has neither gap nor duplicate.

An idle socket's heartbeat does not run that query: `may_have_news` first
probes the log's primary key for any event after how far the log was settled
at the socket's last look, which is where anything it could send or hold must be.

On SQLite (embedded default) writers are serialised, so id order is commit
order and every committed event is final.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import Max, QuerySet
from django.utils import timezone

from auth.models import DeviceSession, User
from auth.tokens import live_session
from backend.any_of import AnyOf
from backend.times import rfc3339, rfc3339_sql
from dossiers.access import visible_dossiers, visible_to
from dossiers.audience import followed_dossiers, own_unwatched_dossiers, watched_organisations
from dossiers.event_types import EventType
from dossiers.models import Dossier, DossierEvent
from tracking.payloads import EventFrame, EventFrameHead, ResyncReason
from tracking.texts import event_text_in

# The log's sequence (dossiers migration 0018) and how many ids after the settled
# point one read looks at to extend it.
SEQUENCE = "tracking_dossierevent_log_seq"
SETTLE_SPAN = 1000

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Position:
    """A place in the log: after every event at or before this id."""

    id: int


class Settled:
    """How far the log is settled, as this process knows it: every id at or below
    `value` is committed or never will be (None: not known yet). Only ever raised:
    what was settled stays settled. Shared by the process's event loops and threads."""

    def __init__(self) -> None:
        self.value: int | None = None
        self._lock = threading.Lock()

    def raise_to(self, value: int | None) -> int | None:
        """At least `value` from now on; returns the new value."""
        with self._lock:
            if value is not None and (self.value is None or value > self.value):
                self.value = value
            return self.value

    def reset(self) -> None:
        """Forget it (the log's ids went back): the next read settles it again."""
        with self._lock:
            self.value = None

    @property
    def base(self) -> int:
        """Where a read extends it from (0: nothing settled yet; no id is below 1)."""
        return self.value or 0


SETTLED = Settled()


@dataclass
class Probe:
    """Settles ids that no read can see (a rolled-back insert's, or one whose
    transaction is still open) by the event writers that could hold them.

    Looks are statements of one connection, one after the other. An event writer
    takes the log's shared advisory lock before it takes an id, and holds it to
    its end (migration 0018). So whoever holds an id up to the sequence's last
    value read by one look, and is still running, is among the lock's holders
    listed by the next look; once none of those holds it any more, every id up to
    that value is settled. Transactions that write no event never count.
    """

    last_read: int | None = None
    # (every id up to this, is settled once none of these event writers runs)
    pending: tuple[int, frozenset[str]] | None = None

    def looked(self, last: int, writers: Sequence[str]) -> int | None:
        """After one look (the sequence's last value it read, the event writers it
        saw running): an id up to which the log is now settled, if the probe got there."""
        running = frozenset(writers)
        if self.last_read is not None and last < self.last_read:
            # The sequence went back (a database restored): start again.
            self.last_read, self.pending = last, None
            return None
        settled = None
        if self.pending is not None and not self.pending[1] & running:
            settled, self.pending = self.pending[0], None
        if self.pending is None and self.last_read is not None:
            if running:
                self.pending = (self.last_read, running)
            else:  # no event writer at all: everything read before is settled
                settled = max(settled or 0, self.last_read)
        self.last_read = last
        return settled


# One look of a probe: the sequence's last value (the one it handed out last), and
# the event writers running (holders of the log's lock, by virtual transaction),
# the caller's own transaction left out (in a test it may have written events:
# it would hold the probe for ever). The columns are PROBE_COLUMNS.
LAST_ID = (
    "(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END"
    " FROM tracking_dossierevent_log_seq)"
)
WRITERS = """ARRAY(SELECT l.virtualtransaction FROM pg_locks l
       WHERE l.locktype = 'advisory' AND l.classid = 21586 AND l.objid = 1
         AND l.objsubid = 2 AND l.pid IS DISTINCT FROM pg_backend_pid())"""
PROBE_COLUMNS = LAST_ID + ", " + WRITERS
PROBE_SQL = "SELECT " + PROBE_COLUMNS
# How far the visible ids run with no gap (SETTLE_SQL), and the sequence's last value.
CHECK_SQL = "SELECT ({settle}), " + LAST_ID
# A look at the log: a step of the probe, and how far the visible ids run with no
# gap after what the process knows settled (SETTLE_SQL, its parameters).
LOOK_SQL = "SELECT " + PROBE_COLUMNS + ", ({settle})"


# The end of the run of ids visible with no gap right after the settled point
# (the same parameter three times): committed, so settled too. Ids only grow, so
# once one is past its place in the run every later one is.
SETTLE_SQL = """
SELECT coalesce(max(c.id), %s) FROM (
    SELECT x.id, row_number() OVER (ORDER BY x.id) AS n
    FROM (SELECT e.id FROM {events} e WHERE e.id > %s ORDER BY e.id LIMIT {span}) x
) c WHERE c.id = %s + c.n
"""


def settle_sql() -> str:
    return SETTLE_SQL.format(events=DossierEvent._meta.db_table, span=SETTLE_SPAN)


def settle_params() -> tuple[int, int, int]:
    base = SETTLED.base
    return base, base, base


def look_sql() -> str:
    return LOOK_SQL.format(settle=settle_sql())


def looked(probe: Probe, row: Sequence[Any]) -> int | None:
    """What a row of LOOK_SQL settles (the process knows it from now on)."""
    last, writers, end = row
    SETTLED.raise_to(end)
    return SETTLED.raise_to(probe.looked(last, writers))


def first_look(probe: Probe, row: Sequence[Any]) -> bool:
    """One look of the process's first settling (a row of PROBE_SQL): whether it must
    wait before the next (the event writers it waits for are still running)."""
    SETTLED.raise_to(probe.looked(*row))
    return SETTLED.value is None and probe.pending is not None


# Each thread's probe: its looks are statements of the thread's own connection.
_thread = threading.local()


def _thread_probe() -> Probe:
    probe: Probe | None = getattr(_thread, "probe", None)
    if probe is None:
        probe = _thread.probe = Probe()
    return probe


def backoff(first: float, cap: float, growth: float) -> Iterator[float]:
    """The waits between looks: `first`, each then `growth` times the one before,
    then `cap` on (`first` at least 1 ms and at most `cap`; `growth` at least 1)."""
    cap = max(cap, 0.001)
    delay = min(max(first, 0.001), cap)
    while True:
        yield delay
        delay = grown(delay, cap, growth)


def grown(delay: float, cap: float, growth: float) -> float:
    return min(delay * max(growth, 1.0), max(cap, 0.001))


def recheck_backoff() -> Iterator[float]:
    return backoff(
        settings.WS_RECHECK_FIRST_SECONDS, settings.WS_RECHECK_SECONDS, settings.WS_RECHECK_GROWTH
    )


@dataclass
class Subscription:
    """One socket's view: whose events, narrowed to a dossier or not, and how far."""

    user: User
    session_id: uuid.UUID
    dossier_id: uuid.UUID | None
    position: Position
    # Events after the cursor that the client already has: those committed but
    # not yet final when it connected, or up to the event it resumed from.
    seen: frozenset[int] = frozenset()
    held: bool = False
    # The first held event: final once the log is settled up to it.
    held_id: int | None = None
    # How far the log was settled at the last look that found nothing more to
    # send: every event up to it after the cursor has been sent (None: not
    # looked yet, or SQLite).
    looked: int | None = None
    # The SQL of `pull` and the audience's parameters, compiled on first use.
    pending_sql: tuple[str, tuple[Any, ...], tuple[Any, ...] | None] | None = field(
        default=None, repr=False
    )

    @property
    def language(self) -> str:
        return self.user.language or settings.LANGUAGE_CODE


def _on_postgres() -> bool:
    return connection.vendor == "postgresql"


def settle(*, probe_step: bool = False) -> int | None:
    """How far the log is settled now (None on SQLite, where every committed event
    is final): the run of visible ids from what the process knows, and with
    `probe_step` a step of the thread's probe too (a look at `pg_locks`: for a gap
    nobody fills); the process's first call probes first, waiting for the event
    writers open then.

    Called inside a transaction that wrote events, it counts them as committed:
    the app never does (sockets read in autocommit), tests may.
    """
    if not _on_postgres():
        return None
    probe = _thread_probe()
    with connection.cursor() as cursor:
        known = SETTLED.value
        if known is not None and not probe_step:
            cursor.execute(CHECK_SQL.format(settle=settle_sql()), settle_params())
            end, last = cursor.fetchone()
            if last >= known:
                return SETTLED.raise_to(end)
            # The log's sequence went back (a database restored under this
            # process): what it knew settled would hide the new events.
            logger.warning("the event log's ids went back: settling it again")
            SETTLED.reset()
        delays = recheck_backoff()
        while SETTLED.value is None:
            # The run of ids from 0 would say little: only the probe settles first.
            cursor.execute(PROBE_SQL)
            if first_look(probe, cursor.fetchone()):
                time.sleep(next(delays))
        if probe_step:
            cursor.execute(look_sql(), settle_params())
            return looked(probe, cursor.fetchone())
        cursor.execute(settle_sql(), settle_params())
        return SETTLED.raise_to(cursor.fetchone()[0])


def events_for(user: User, dossier_id: uuid.UUID | None = None) -> QuerySet[DossierEvent]:
    """What a socket of `user` carries: events of their own dossiers and of the
    organisations they watch; narrowed to one dossier, that dossier's if they may see it."""
    # An array, not `IN (subquery)`: the audience's events come from the
    # per-dossier index (dossier_event_dossier_log), not a walk of the log.
    return DossierEvent.objects.filter(
        AnyOf("dossier_id", _audience(user, dossier_id).values("pk"))
    )


def _audience(user: User, dossier_id: uuid.UUID | None) -> QuerySet[Dossier]:
    if dossier_id is None:
        return followed_dossiers(user)
    return visible_dossiers(user).filter(pk=dossier_id)


def _after(events: QuerySet[DossierEvent], position: Position) -> QuerySet[DossierEvent]:
    return events.filter(id__gt=position.id)


def live_position(user: User, dossier_id: uuid.UUID | None) -> tuple[Position, frozenset[int]]:
    """Where a socket that resumes nothing starts: with the events committed from now on.

    The cursor is where the log is settled (transactions still open after it may
    commit later), and the events already committed after it are marked seen.
    """
    settled = settle()
    if settled is None:
        last = DossierEvent.objects.aggregate(last=Max("id"))["last"] or 0
        return Position(last), frozenset()
    committed = events_for(user, dossier_id).filter(id__gt=settled)
    return Position(settled), frozenset(committed.values_list("id", flat=True))


def resume(
    user: User, last_event_id: int, dossier_id: uuid.UUID | None = None
) -> tuple[Position, frozenset[int]] | ResyncReason:
    """The cursor after `last_event_id`, or why the app must resync instead.

    The event must be one the user may see. When it is not final yet (the app
    learnt its id from REST while an older transaction was still open: the
    stream only sends final events), the cursor moves back to where the log is
    settled so the older transactions' events still come once they commit; the
    events already committed up to the resume point are skipped as seen.
    """
    # Any event the user may see is a valid position in the log.
    # The event by its key, then its dossier checked (a join on two primary keys),
    # not the user's dossiers first.
    visible = DossierEvent.objects.filter(visible_to(user, "dossier__"))
    row = visible.filter(id=last_event_id).values_list("id", "created_at").first()
    if row is None:
        return "unknown_event"
    event_id, created_at = row
    retention = dt.timedelta(seconds=settings.WS_RESUME_RETENTION_SECONDS)
    if created_at < timezone.now() - retention:
        return "expired"
    settled = settle()
    if settled is not None and event_id > settled:
        # Committed events up to the resume point count as seen; those still
        # invisible (their transaction is open) will come when they are final.
        seen = events_for(user, dossier_id).filter(id__gt=settled, id__lte=event_id)
        return Position(settled), frozenset(seen.values_list("id", flat=True))
    return Position(event_id), frozenset()


def pull(subscription: Subscription) -> list[EventFrame]:
    """The next final events after the cursor, as frames; advances the cursor.

    Sets `subscription.held` when later events exist that are not final yet.
    (tracking.reader does the same on the socket's event loop.)
    """
    limit = settings.WS_REPLAY_BATCH
    if SETTLED.value is None or subscription.held:
        # With a step of the probe: a gap nobody fills settles by looking again.
        settle(probe_step=True)
    settled, rows = _pending(subscription, limit + 1)
    language = subscription.language
    return [event_frame(row, language) for row in advance(subscription, rows, limit, settled)]


def advance(
    subscription: Subscription, rows: list[EventRow], limit: int, settled: int | None
) -> list[EventRow]:
    """The leading final `rows` (at most `limit`), to send; moves the cursor past them.

    The rows are the events after the cursor in log order, each marked final or
    not against `settled`, how far the log was settled in the query's own
    snapshot (None on SQLite), which the process now knows too. Final events
    come first (the order is by id), and a row that is not final means events
    are held.
    """
    SETTLED.raise_to(settled)
    batch: list[EventRow] = []
    for row in rows[:limit]:
        if not row.final:
            break
        batch.append(row)
    if batch:
        subscription.position = Position(batch[-1].id)
    waiting = [row.id for row in rows if not row.final]
    subscription.held = bool(waiting)
    subscription.held_id = min(waiting) if waiting else None
    # Every final event up to `settled` after the old cursor is in this batch
    # unless the batch is full: only then is there more to read below it.
    subscription.looked = settled if len(batch) < limit else None
    return batch


def released(subscription: Subscription) -> bool:
    """Whether the socket's held event is final by now (as far as the process knows)."""
    settled = SETTLED.value
    return (
        not subscription.held
        or subscription.held_id is None
        or (settled is not None and subscription.held_id <= settled)
    )


def may_have_news(subscription: Subscription) -> bool:
    """Whether a `pull` could find anything: False only when no event at all
    (anyone's) has been written since the last look that found nothing more.

    The cheap check of an idle socket's heartbeat (one index range probe, no
    join): events up to where the log was settled at the last look were final
    then, so they have been sent; anything `pull` could send or hold now is after it.
    """
    if subscription.held or subscription.looked is None:
        return True
    return DossierEvent.objects.filter(id__gt=subscription.looked).exists()


def heartbeat_check(subscription: Subscription) -> tuple[bool, bool]:
    """At a heartbeat: (the session is still live, the log may hold news for it)."""
    if not session_is_live(subscription.session_id):
        return False, False
    return True, may_have_news(subscription)


class EventRow(NamedTuple):
    """What a frame needs of one event, and whether the event is final (a tuple:
    a replay makes 200 of them)."""

    id: int
    type: str
    status_before: int | None
    status_after: int | None
    # The event's moment as the API writes it (`rfc3339`), written by PostgreSQL.
    time: str
    # Its data as JSON text, as PostgreSQL writes it: a frame carries it as it is.
    data: str
    dossier_id: uuid.UUID
    dossier_code: str | None
    final: bool

    @classmethod
    def of(cls, row: Sequence[Any]) -> EventRow:
        """From a row of PENDING_SQL (after its leading settled column)."""
        return cls(
            id=row[1],
            type=row[2],
            status_before=row[3],
            status_after=row[4],
            time=row[5],
            data=_json_text(row[6]),
            dossier_id=row[7],
            dossier_code=row[8],
            final=row[9],
        )


def rows_of(found: Sequence[Sequence[Any]]) -> tuple[int | None, list[EventRow]]:
    """PENDING_SQL's result: how far the log is settled in its snapshot and the
    events, if any.

    The query always returns at least one row, so that is known even when
    there is no event (that row's event columns are NULL).
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
# per-dossier index (dossier, id), a few rows per dossier, whatever the
# cursor's age: `IN (subquery)` walked the whole log after the cursor instead.
#
# Its first column is how far the log is settled in the query's snapshot
# (SETTLE_SQL): one row with NULL event columns comes back when there is no
# event, so a look that finds nothing still records how far it looked
# (`may_have_news`).
PENDING_SQL = """
SELECT w.settled, p.id, p.type, p.status_before, p.status_after, p.time_text,
       p.data, p.dossier_id, p.code, p.id <= w.settled AS final
FROM (SELECT ({settle}) AS settled) w
LEFT JOIN LATERAL (
    SELECT {columns}, d.code
    FROM {events} e JOIN {dossiers} d ON d.id = e.dossier_id
    WHERE e.dossier_id = ANY(ARRAY({audience}))
      AND e.id > %s
      AND e.id <> ALL(%s::bigint[])
    ORDER BY e.id
    LIMIT %s
) p ON true
ORDER BY p.id
"""


# A socket that follows everything of its user (no dossier named): its own
# dossiers by dossier as above, and each watched organisation's events from the
# organisation's own index in log order (dossier_event_org_log on the copy of
# the dossier's organisation), at most `limit` from each, merged. The events of
# a large organisation's thousands of dossiers after a cursor months back are
# then a bounded index range each, not tens of thousands of rows to sort. The
# two parts do not overlap (the first leaves out dossiers of watched
# organisations); the seen events are left out inside each part, before its
# LIMIT, so no part's next event can be skipped.
FOLLOWED_SQL = """
SELECT w.settled, p.id, p.type, p.status_before, p.status_after, p.time_text,
       p.data, p.dossier_id, p.code, p.id <= w.settled AS final
FROM (SELECT ({settle}) AS settled) w
LEFT JOIN LATERAL (
    -- The dossier's code by its key, per delivered event (a join could hash every dossier).
    SELECT k.*, (SELECT d.code FROM {dossiers} d WHERE d.id = k.dossier_id) AS code
    FROM (
        SELECT u.* FROM (
            (SELECT {columns} FROM {events} e
             WHERE e.dossier_id = ANY(ARRAY({own}))
               AND e.id > %s
               AND e.id <> ALL(%s::bigint[])
             ORDER BY e.id
             LIMIT %s)
            UNION ALL
            SELECT x.* FROM unnest(ARRAY({organisations})) AS o(organisation_id)
            CROSS JOIN LATERAL (
                SELECT {columns} FROM {events} e
                WHERE e.organisation_id = o.organisation_id
                  AND e.id > %s
                  AND e.id <> ALL(%s::bigint[])
                ORDER BY e.id
                LIMIT %s
            ) x
        ) u
        ORDER BY u.id
        LIMIT %s
    ) k
) p ON true
ORDER BY p.id
"""
# The moment as the frame writes it, by PostgreSQL: not parsed into a datetime and
# formatted again in Python for each event (200 a replay).
EVENT_COLUMNS = (
    "e.id, e.type, e.status_before, e.status_after, "
    + rfc3339_sql("e.created_at")
    + " AS time_text, e.data::text AS data, e.dossier_id"
)


def pending_query(subscription: Subscription, limit: int) -> tuple[str, tuple[Any, ...]]:
    """PENDING_SQL (FOLLOWED_SQL for a socket not narrowed to a dossier) and its
    parameters for this socket now (PostgreSQL only).

    The SQL is compiled on the first call (sync code: the compiler may ask the
    database connection about the server); later calls only fill in the cursor
    and where the process knows the log settled.
    """
    if subscription.pending_sql is None:
        subscription.pending_sql = _compile_pending(subscription)
    sql, own_params, organisation_params = subscription.pending_sql
    # The seen ids as the array's text: psycopg writes a list in Python, a text in C.
    seen = "{" + ",".join(map(str, sorted(subscription.seen))) + "}"
    after = (subscription.position.id, seen, limit)
    if organisation_params is None:
        return sql, (*settle_params(), *own_params, *after)
    return sql, (*settle_params(), *own_params, *after, *organisation_params, *after, limit)


def _compile_pending(
    subscription: Subscription,
) -> tuple[str, tuple[Any, ...], tuple[Any, ...] | None]:
    names = {
        "settle": settle_sql(),
        "events": DossierEvent._meta.db_table,
        "dossiers": Dossier._meta.db_table,
    }
    if subscription.dossier_id is not None:
        audience = _audience(subscription.user, subscription.dossier_id).values("pk")
        audience_sql, audience_params = audience.query.sql_with_params()
        sql = PENDING_SQL.format(columns=EVENT_COLUMNS, audience=audience_sql, **names)
        return sql, _as_texts(audience_params), None
    own_sql, own_params = (
        own_unwatched_dossiers(subscription.user).values("pk").query.sql_with_params()
    )
    organisations_sql, organisation_params = watched_organisations(
        subscription.user
    ).query.sql_with_params()
    sql = FOLLOWED_SQL.format(
        columns=EVENT_COLUMNS, own=own_sql, organisations=organisations_sql, **names
    )
    return sql, _as_texts(own_params), _as_texts(organisation_params)


def _as_texts(params: Sequence[Any]) -> tuple[Any, ...]:
    """The audience's keys as text, which PostgreSQL reads as the column's type: psycopg
    writes a text in C, a UUID in Python (on every hint, for every socket)."""
    return tuple(str(value) if isinstance(value, uuid.UUID) else value for value in params)


def _pending(subscription: Subscription, limit: int) -> tuple[int | None, list[EventRow]]:
    """How far the log is settled (None on SQLite) and up to `limit` events after
    the cursor that the client has not seen, in log order."""
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
                type=event.type,
                status_before=event.status_before,
                status_after=event.status_after,
                time=iso_time(event.created_at),
                data=json.dumps(event.data or {}, ensure_ascii=False),
                dossier_id=event.dossier_id,
                dossier_code=event.dossier.code,
                final=True,
            )
            for event in events.select_related("dossier").order_by("id")[:limit]
        ]
    sql, params = pending_query(subscription, limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return rows_of(cursor.fetchall())


def _json_text(value: Any) -> str:
    """The data column's JSON text (the query reads it as text: not decoded to be
    encoded again into each frame)."""
    if value is None or value == "null":
        return "{}"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _data(row: EventRow) -> dict[str, Any]:
    value = json.loads(row.data)
    return value if isinstance(value, dict) else {}


def event_frame(row: EventRow, language: str) -> EventFrame:
    """The one documented shape of an event frame, texts in `language`."""
    return {**_frame_head(row, language), "data": _data(row)}


def _frame_head(row: EventRow, language: str) -> EventFrameHead:
    """The frame less its data (last in the frame)."""
    # Only one type's text depends on the data (how the result was handed over).
    data = _data(row) if row.type == EventType.DOSSIER_HANDED_OVER else None
    return {
        "type": "event",
        "id": row.id,
        "event_type": row.type,
        "dossier_id": str(row.dossier_id),
        "dossier_code": row.dossier_code,
        "status": row.status_after,
        "status_before": row.status_before,
        "time": row.time,
        "text": event_text_in(language, row.type, data),
    }


# The JSON text of recent frames, by (event id, dossier code, language): every socket
# of the process that sends an event in one language sends the same text, built
# once. An event never changes; its dossier's code is read with it (a dossier gets
# its code after its first events), so it is part of the key.
FRAME_TEXTS_KEPT = 1024
_frame_texts: dict[tuple[int, str | None, str], str] = {}


def frame_texts(rows: list[EventRow], language: str) -> list[str]:
    """The frames of `rows` as the socket sends them (JSON), each built once per
    event, dossier code and language while recent."""
    texts = []
    for row in rows:
        key = (row.id, row.dossier_code, language)
        text = _frame_texts.get(key)
        if text is None:
            # The event's data goes in as PostgreSQL wrote it: not decoded and encoded.
            head = json.dumps(_frame_head(row, language), ensure_ascii=False)
            text = head[:-1] + ', "data": ' + row.data + "}"
            while len(_frame_texts) >= FRAME_TEXTS_KEPT:
                try:  # the oldest first (dicts keep their order)
                    del _frame_texts[next(iter(_frame_texts))]
                except (KeyError, RuntimeError, StopIteration):  # another loop's thread
                    break
            _frame_texts[key] = text
        texts.append(text)
    return texts


def iso_time(moment: dt.datetime) -> str:
    return rfc3339(moment)


def session_is_live(session_id: uuid.UUID) -> bool:
    return _live_sessions().filter(pk=session_id).exists()


def load_session(session_id: uuid.UUID) -> DeviceSession | None:
    return _live_sessions().select_related("user").filter(pk=session_id).first()


def _live_sessions() -> QuerySet[DeviceSession]:
    """Sessions not ended: neither revoked nor past their maximum age (a ticket of one
    past it is refused, its open sockets close at their next heartbeat), of an active
    account."""
    return DeviceSession.objects.filter(live_session(), user__is_active=True)


def may_see_dossier(user: User, dossier_id: uuid.UUID) -> bool:
    return visible_dossiers(user).filter(pk=dossier_id).exists()


def parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None
