"""Sending deliveries: claim in the database, send, record, retry or give up.

A delivery is sent at most once, and a worker that dies mid-batch loses none.
The send job first *claims* its rows with a lease (`SELECT ... FOR UPDATE SKIP
LOCKED`, then a claim token and `claimed_until`), without sending anything.
Then, one slice of FCM_CONCURRENCY rows at most at a time, cut to the room the
process's FCM connections have (`_room_to_send`: the worker's jobs share
FCM_MAX_CONNECTIONS; the rows beyond stay claimed for the next slice), it marks the
slice `sending` (only the rows its token still holds) and commits *before* calling
FCM (the messages are built before that commit, and no request of the slice then
waits for a connection; each frees its connection's slot once answered), sends it, and
records each answer a few milliseconds after it comes (FCM_RECORD_GATHER_MS),
which also defers the retry job for temporary failures. So after a crash:
- rows in `sending` were handed to FCM: they are never sent again (FCM has no
  idempotency key; `fail_stale_sending` closes them);
- rows still only claimed were never sent: once their lease has passed,
  `recover_pushes` queues them again, and the job that took them over is the
  only one whose token can mark them `sending`;
- rows no job will ever look at (their job failed for good, or died before
  claiming them) are found by `recover_pushes` too: a claimable row that no
  queued or running send job names is queued again.
Pushes of one dossier to one device share a collapse key, so the phone shows the
one FCM took last: per (device, dossier), a slice is handed to FCM under a lock held
until its answers are recorded (`dossier_push_order`), and a push that a later
event's push replaces is closed SUPERSEDED instead of sent (`_superseded`): FCM
takes a dossier's pushes to a device in the order of its events, the latest last.
A push waits for such a lock PUSH_ORDER_LOCK_TIMEOUT_SECONDS at most (its holder
may be a frozen worker), then goes back to the queue unsent.
Redis only carries a convenience here (the pause after QUOTA_EXCEEDED, which a
job waits out itself when it is at most PUSH_PAUSE_WAIT_SECONDS): when it is
down, jobs send as if no pause were set (FCM's answers still pace them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
)
from django.utils import timezone

from auth.sms import SmsError, send_sms
from auth.tokens import live_session, signed_in_since
from backend.any_of import IdIn, array
from backend.jobs import defer, defer_many
from dossiers.audience import still_recipient
from notifications.fcm import PushGateway, SendResult, get_gateway
from notifications.models import Delivery, Device, Notification
from notifications.payload import Push, channel_for, fit

logger = logging.getLogger(__name__)

PAUSE_KEY = "notifications:fcm-paused-until"
# A retry job may start this much before the recorded time (clock skew between hosts).
CLAIM_TOLERANCE = dt.timedelta(seconds=2)
_CLAIMABLE = [str(state) for state in Delivery.CLAIMABLE]  # as a statement's parameter
_random = secrets.SystemRandom()


def jitter_fraction() -> float:
    """A random number in [0, 1); tests replace it to check exact timings."""
    return _random.random()


def sendable_devices() -> QuerySet[Device]:
    """Devices that get pushes: active, of a live session (not revoked, not past its
    SESSION_MAX_AGE_DAYS: its tokens no longer work, so neither do its pushes), seen
    in DEVICE_STALE_DAYS."""
    cutoff = timezone.now() - dt.timedelta(days=settings.DEVICE_STALE_DAYS)
    return Device.objects.filter(
        live_session("session__"), active=True, session__isnull=False
    ).filter(Q(last_seen_at__gte=cutoff) | Q(session__last_seen_at__gte=cutoff))


# Notices about the account's own security (support reset) go to the devices of the
# sessions that the same change revoked: the one exception to `sendable_devices`.
SESSION_ENDING_NOTICE_TYPES = frozenset({"account.support_reset"})


def session_ending_notice_devices(session_ids: Iterable[str]) -> QuerySet[Device]:
    """Devices a session-ending notice may reach: of those sessions, revoked or not,
    still active or retired only because the session ended; seen in DEVICE_STALE_DAYS."""
    cutoff = timezone.now() - dt.timedelta(days=settings.DEVICE_STALE_DAYS)
    return (
        Device.objects.filter(session_id__in=list(session_ids))
        .filter(Q(active=True) | Q(deactivated_reason="session_ended"))
        .filter(Q(last_seen_at__gte=cutoff) | Q(session__last_seen_at__gte=cutoff))
    )


def deactivate_devices(device_ids: Iterable[int], reason: str) -> int:
    return Device.objects.filter(pk__in=list(device_ids), active=True).update(
        active=False, deactivated_at=timezone.now(), deactivated_reason=reason
    )


def queue_deliveries(
    delivery_ids: Sequence[int], not_before: dt.datetime | None = None, *, spread: int = 1
) -> None:
    """Defer the send job(s) for `delivery_ids`, in the caller's transaction: one job
    per FCM_BATCH_SIZE rows, all of them in one INSERT. `spread`: at least that many
    jobs if each still gets a full slice (FCM_CONCURRENCY rows), so that the worker's
    jobs send side by side (one job's database round trips overlap another's sends)."""
    ids = sorted(delivery_ids)
    size = max(1, settings.FCM_BATCH_SIZE)
    if spread > 1:
        size = min(size, max(settings.FCM_CONCURRENCY, 1, math.ceil(len(ids) / spread)))
    defer_many(
        "notifications.send_pushes",
        [{"delivery_ids": ids[start : start + size]} for start in range(0, len(ids), size)],
        schedule_at=not_before,
    )


# A fan-out's deliveries, `rows` of them a statement. Only the model's table name goes
# into the SQL; the values travel as parameters (the ids as arrays' text form).
_CREATE_DELIVERIES_SQL = (
    "INSERT INTO {table} (notification_id, device_id, next_attempt_at, state, attempts, "
    "fcm_message_id, error_code, error_message, claim_token, created_at, updated_at) "
    "SELECT v.notification_id, v.device_id, v.next_attempt_at, %s, 0, '', '', '', '', %s, %s "
    "FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) "
    "AS v(notification_id, device_id, next_attempt_at) "
    "RETURNING id, next_attempt_at"
)


def create_deliveries(
    rows: Sequence[tuple[int, int, dt.datetime | None]], batch_size: int
) -> dict[dt.datetime | None, list[int]]:
    """Insert the deliveries (notification id, device id, not before) of a fan-out,
    `batch_size` a statement, in the caller's transaction; their ids by not-before.

    `bulk_create` of 1,000 rows made 1,000 model instances, prepared their 15 fields
    one by one (a clock reading for each of the two dates of each) and had psycopg
    dump each column as a list: a third of a fan-out's CPU. Here only three arrays go.
    PostgreSQL only; the embedded default (SQLite) uses `bulk_create`."""
    created: dict[dt.datetime | None, list[int]] = defaultdict(list)
    if connection.vendor != "postgresql":
        made = Delivery.objects.bulk_create(
            [Delivery(notification_id=n, device_id=d, next_attempt_at=at) for n, d, at in rows],
            batch_size=batch_size,
        )
        for row in made:
            created[row.next_attempt_at].append(row.pk)
        return created
    sql = _CREATE_DELIVERIES_SQL.format(table=connection.ops.quote_name(Delivery._meta.db_table))
    now = timezone.now()
    step = max(1, batch_size)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), step):
            batch = rows[start : start + step]
            cursor.execute(
                sql,
                [
                    str(Delivery.State.CREATED),
                    now,
                    now,
                    array(n for n, _, _ in batch),
                    array(d for _, d, _ in batch),
                    [at for _, _, at in batch],
                ],
            )
            for pk, not_before in cursor.fetchall():
                created[not_before].append(pk)
    return created


def retry_delay(attempt: int, result: SendResult, jitter: float) -> float:
    """Seconds before try `attempt + 1`, rounded up to a tenth of a second.

    QUOTA_EXCEEDED: at least PUSH_QUOTA_MIN_WAIT_SECONDS or the Retry-After, plus up
    to 10 % jitter. Other temporary failures: exponential backoff (base * 2^(n-1),
    capped) with jitter taking up to half of it off, never below a Retry-After.
    (Whole seconds, as before, turned a 1.05 s wait into 2 s.)
    """
    retry_after = result.retry_after or 0.0
    if result.throttled:
        wait = max(float(settings.PUSH_QUOTA_MIN_WAIT_SECONDS), retry_after)
        return _tenths(wait + wait * 0.1 * jitter)
    backoff = min(
        float(settings.PUSH_RETRY_MAX_SECONDS),
        settings.PUSH_RETRY_BASE_SECONDS * 2.0 ** max(attempt - 1, 0),
    )
    return _tenths(max(retry_after, backoff - backoff * 0.5 * jitter))


def _tenths(seconds: float) -> float:
    return math.ceil(round(seconds * 10, 6)) / 10


def paused_until() -> dt.datetime | None:
    """While FCM throttles the project (QUOTA_EXCEEDED), no job sends anything."""
    try:
        value = cache.get(PAUSE_KEY)
    except redis.RedisError as exc:
        # The pause only spares FCM a few requests: send, and let its answers pace us.
        logger.warning("push pause flag unreadable (%s); sending as if none", type(exc).__name__)
        return None
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value)
    return moment if moment > timezone.now() else None


def _pause(until: dt.datetime) -> None:
    current = paused_until()
    if current is None or until > current:
        timeout = max(1, math.ceil((until - timezone.now()).total_seconds()))
        try:
            cache.set(PAUSE_KEY, until.isoformat(), timeout=timeout)
        except redis.RedisError as exc:
            # The throttled rows keep their own next_attempt_at in the database.
            logger.warning("push pause flag not stored (%s)", type(exc).__name__)


@dataclass(slots=True)
class Outgoing:
    """A delivery as its send job handles it: the row, its device's token and what its
    notification says, read as plain values in the claim's own query. (Model instances
    of each row, its device and its notification, every date of the three parsed,
    cost the worker more CPU than sending the push.)"""

    pk: int
    notification_id: int
    device_id: int
    token: str
    session_id: uuid.UUID | None
    attempts: int
    user_id: uuid.UUID
    dossier_id: uuid.UUID | None
    event_id: int | None
    type: str
    category: str
    urgent: bool
    title: str
    body: str
    data: dict[str, Any]


# `Outgoing`'s fields in the order of its constructor, as `values_list` names them.
_OUTGOING_VALUES = (
    "pk",
    "notification_id",
    "device_id",
    "device__token",
    "device__session_id",
    "attempts",
    "notification__user_id",
    "notification__dossier_id",
    "notification__event_id",
    "notification__type",
    "notification__category",
    "notification__urgent",
    "notification__title",
    "notification__body",
    "notification__data",
)


def send_pushes(delivery_ids: Sequence[int]) -> int:
    """Send the claimable deliveries among `delivery_ids`; returns how many were tried.
    Outside any transaction (checked before anything is claimed): see `dossier_push_order`."""
    _refuse_inside_a_transaction()
    pause = paused_until()
    while pause is not None:
        wait = (pause - timezone.now()).total_seconds()
        if wait > settings.PUSH_PAUSE_WAIT_SECONDS:
            # Sending now would only earn more 429s and burn the rows' tries: come back later.
            queue_deliveries(delivery_ids, not_before=pause)
            return 0
        sleep(max(0.0, wait))  # a short pause: waited out here rather than by a new job
        pause = _extended(pause)
    token = uuid.uuid4().hex
    claimed = _claim(delivery_ids, token)
    if not claimed:
        return 0
    gateway = _gateway_if_it_loads()
    # A slice goes at once: no more rows than the gateway can have out (`reserve`).
    most = getattr(gateway, "max_in_flight", 500)
    step = max(1, min(settings.FCM_CONCURRENCY, 500, most))
    tried = 0
    start = 0
    ahead: dict[int, Push] = {}  # messages built before their slice, by row id
    while start < len(claimed):
        pause = paused_until()
        left = [row.pk for row in claimed[start:]]
        if pause is not None and not _wait_out(pause, left, token):
            _release(left, token, not_before=pause)
            break
        batch = claimed[start : start + step]
        # The messages are built before the rows are marked `sending`: a worker killed
        # between that commit and the requests leaving loses those pushes for good
        # (closed INTERRUPTED, never sent), so nothing slow may stand there.
        built = _built_ahead(ahead, batch)
        # Nor a wait for a connection: the slice waits for room among the process's
        # requests out (FCM_MAX_CONNECTIONS) while its rows are only claimed, and
        # takes the room there is: the rows beyond it stay claimed for the next slice.
        with _room_to_send(gateway, len(batch), left, token, renew=bool(start)) as slots:
            if slots is not None:
                batch = batch[: slots.count]
            start += len(batch)
            with dossier_push_order(batch) as ready:
                if len(ready) < len(batch):
                    # Another job (maybe a frozen one) still sends pushes of their
                    # pairs: these go back to the queue, unsent, and come after it.
                    going = {row.pk for row in ready}
                    _release(
                        [row.pk for row in batch if row.pk not in going],
                        token,
                        not_before=timezone.now() + _order_lock_retry(),
                    )
                rows = _hand_to_fcm(ready, token)
                if not rows:
                    continue
                pushes = None if built is None else [ahead.pop(row.pk) for row in rows]
                gateway = _send_slice(gateway, rows, pushes, slots)
        tried += len(rows)
    return tried


def _built_ahead(ahead: dict[int, Push], rows: list[Outgoing]) -> dict[int, Push] | None:
    """`ahead` with the messages of `rows` it lacks added (those of rows a slice cut
    to the room there was left for the next one are kept); None when they cannot be
    built now (`_prepared`)."""
    missing = [row for row in rows if row.pk not in ahead]
    more = _prepared(missing) if missing else {}
    if more is None:
        return None
    ahead.update(more)
    return ahead


def _gateway_if_it_loads() -> PushGateway | None:
    """The gateway, or None when it cannot be made now: `_send_slice` then meets the
    same failure and fails the slice for now (a gateway failure)."""
    try:
        return get_gateway()
    except Exception:
        return None


@contextlib.contextmanager
def _room_to_send(
    gateway: PushGateway | None, wanted: int, left: list[int], token: str, *, renew: bool
) -> Iterator[Any]:
    """Wait until the gateway has room (`reserve`: a quarter of the FCM gateway's
    connections, shared by the process's jobs, or `wanted`; other gateways have no
    limit), keeping the claim on the rows `left` meanwhile; yield the slots taken
    (`wanted` at most; the caller cuts its slice to them), those no request holds
    given back on leaving (each request gives its own back on the sender's loop once
    answered).

    Before, a job marked its slice `sending` whatever the connections free: with
    WORKER_CONCURRENCY jobs of FCM_CONCURRENCY rows each against FCM_MAX_CONNECTIONS,
    the rows beyond waited for a connection in `sending`, and a crash then closed them
    INTERRUPTED though they never left. Now they wait claimed: a crash leaves them to
    `recover_pushes`, which queues them again once the lease passed."""
    reserve = getattr(gateway, "reserve", None)
    if reserve is None:
        if renew:
            _renew_lease(left, token)
        yield None
        return
    slots = reserve(wanted, 0)
    if slots is None:
        # Other jobs' requests fill the connections: wait, renewing the claim each
        # half lease, and renew it once more when room is found (the order locks
        # may still make the slice wait PUSH_ORDER_LOCK_TIMEOUT_SECONDS).
        half_lease = max(0.5, settings.PUSH_CLAIM_LEASE_SECONDS / 2)
        while (slots := reserve(wanted, half_lease)) is None:
            _renew_lease(left, token)
        renew = True
    try:
        if renew:
            _renew_lease(left, token)
        yield slots
    finally:
        slots.close()


def _order_lock_retry() -> dt.timedelta:
    """How long pushes left out by `dossier_push_order` wait before they are tried
    again: as long as they waited (a second at least), so that a frozen holder keeps
    a worker busy half the time at most."""
    return dt.timedelta(seconds=max(1.0, float(settings.PUSH_ORDER_LOCK_TIMEOUT_SECONDS)))


def _gateway_failed(rows: list[Outgoing], pending: set[int], exc: Exception) -> None:
    logger.error("push gateway failed", exc_info=exc)
    failure = SendResult(error_code="GATEWAY_ERROR", error_message=type(exc).__name__)
    left = sorted(pending)
    _record([rows[index] for index in left], [failure] * len(left))
    pending.clear()


def _answers(
    gateway: PushGateway, pushes: list[Push], slots: Any = None
) -> Iterator[list[tuple[int, SendResult]]]:
    """The gateway's answers as they come when it can hand them over so (FCM, which
    gives each request's slot back as it is answered), else all at once (the
    development outboxes, a custom backend)."""
    streaming = getattr(gateway, "send_as_answered", None)
    if streaming is not None:
        yield from streaming(pushes) if slots is None else streaming(pushes, slots=slots)
    else:
        yield list(enumerate(gateway.send(pushes)))


def _prepared(rows: list[Outgoing]) -> dict[int, Push] | None:
    """Each row's message by row id; None when they cannot be built now (the send
    then builds them and fails the rows for now, as a gateway failure)."""
    try:
        return {row.pk: push for row, push in zip(rows, _pushes_for(rows), strict=True)}
    except Exception:
        logger.exception("push messages not built before sending")
        return None


def _send_slice(
    gateway: PushGateway | None,
    rows: list[Outgoing],
    pushes: list[Push] | None = None,
    slots: Any = None,
) -> PushGateway | None:
    """Send one slice (its rows are `sending`) and record each answer as it comes.

    The answers are recorded a few milliseconds after they arrive
    (FCM_RECORD_GATHER_MS), not once the slowest request of the slice is answered
    (up to FCM_TIMEOUT_SECONDS): a worker killed meanwhile leaves in `sending`, to
    be closed as INTERRUPTED, only the requests still out. A gateway failure fails
    the rows not answered yet (temporary, retried); a failure to record is not the
    gateway's and stops the job, leaving its unrecorded rows `sending` (never sent
    again).
    """
    pending = set(range(len(rows)))
    try:
        gateway = gateway or get_gateway()
        answers = _answers(gateway, pushes if pushes is not None else _pushes_for(rows), slots)
    except Exception as exc:  # nothing may leave claimed rows in `sending`
        _gateway_failed(rows, pending, exc)
        return gateway
    while pending:
        try:
            batch = next(answers)
        except StopIteration:
            break
        except Exception as exc:  # nothing may leave claimed rows in `sending`
            _gateway_failed(rows, pending, exc)
            break
        batch = [(index, result) for index, result in batch if index in pending]
        # Outside the gateway's `try`: a failure to record stops the job.
        _record([rows[index] for index, _ in batch], [result for _, result in batch])
        pending.difference_update(index for index, _ in batch)
    if pending:
        _gateway_failed(rows, pending, RuntimeError("the gateway gave no answer"))
    return gateway


def _wait_out(pause: dt.datetime, ids: list[int], token: str) -> bool:
    """Wait for a short pause (FCM's Retry-After) in the job, keeping its claim.

    Giving the rows back and queueing a job for the end of the pause costs a job
    start and a claim of the whole rest of the batch per 429; with isolated 429s
    that restart cost more than the waits FCM asked for. A pause longer than
    PUSH_PAUSE_WAIT_SECONDS is not waited out here (False): the rows go back.
    """
    current: dt.datetime | None = pause
    while current is not None:
        wait = (current - timezone.now()).total_seconds()
        if wait > settings.PUSH_PAUSE_WAIT_SECONDS:
            return False
        # The claim must outlive the wait, or recovery would hand the rows to another job.
        lease = dt.timedelta(seconds=settings.PUSH_CLAIM_LEASE_SECONDS)
        _extend_claim(ids, token, current + lease)
        sleep(max(0.0, wait))
        current = _extended(current)
    return True


def _extended(pause: dt.datetime) -> dt.datetime | None:
    """The pause now set if another 429 made it end later than `pause`, else None."""
    later = paused_until()
    return later if later is not None and later > pause else None


def sleep(seconds: float) -> None:
    """Wait in the job; tests replace it to check what is waited for."""
    time.sleep(seconds)


def _hand_to_fcm(rows: list[Outgoing], token: str) -> list[Outgoing]:
    """Mark the rows this claim still holds `sending`, committed before any request;
    close instead those a push for a later event of their dossier replaces
    (`_superseded`: decided here, the last moment before the requests leave, under
    the caller's `dossier_push_order`)."""
    now = timezone.now()
    with transaction.atomic():
        mine = _still_held([row.pk for row in rows], token)
        superseded = _superseded([row for row in rows if row.pk in mine], now)
        if superseded:
            Delivery.objects.filter(IdIn("pk", superseded)).update(
                state=Delivery.State.PERMANENT_FAILURE,
                error_code=SUPERSEDED,
                error_message="A push for a later event of this dossier replaces this one.",
                next_attempt_at=None,
                claimed_until=None,
            )
            mine -= superseded
        # Two pushes of one dossier to one device left (an urgent one stays for a
        # later one that is only due) must not leave side by side: the later ones go
        # back to the queue, and their job waits for this one's answers.
        after = _after_the_first_of_their_pair([row for row in rows if row.pk in mine])
        if after:
            Delivery.objects.filter(IdIn("pk", after)).update(
                claim_token="",  # nosec B106 # releasing a job's claim, not a password
                claimed_until=None,
            )
            queue_deliveries(sorted(after))
            mine -= after
        if mine:
            _mark_sending(mine, now)
    kept = [row for row in rows if row.pk in mine]
    for row in kept:
        row.attempts += 1
    return kept


# A slice's hand-off and the lease of the rest of its job, in SQL on PostgreSQL: the
# ORM spent more of the worker's CPU building each statement than PostgreSQL took to
# run it, three statements a slice. Only the model's table name goes into the SQL;
# the values travel as parameters. (The ORM's versions stay for SQLite.)
_STILL_HELD_SQL = (
    "SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) AND claim_token = %s "
    "AND state = ANY(%s) FOR UPDATE"
)
_MARK_SENDING_SQL = (
    "UPDATE {table} SET state = %s, attempts = attempts + 1, last_attempt_at = %s, "
    "claimed_until = NULL WHERE id = ANY(%s::bigint[])"
)
_EXTEND_CLAIM_SQL = (
    "UPDATE {table} SET claimed_until = %s WHERE id = ANY(%s::bigint[]) "
    "AND claim_token = %s AND state = ANY(%s)"
)


def _delivery_sql(sql: str) -> str:
    return sql.format(table=connection.ops.quote_name(Delivery._meta.db_table))


def _still_held(ids: list[int], token: str) -> set[int]:
    """The rows among `ids` that the claim `token` still holds, locked until the
    transaction ends."""
    if connection.vendor != "postgresql":
        return set(
            Delivery.objects.select_for_update()
            .filter(IdIn("pk", ids), claim_token=token, state__in=Delivery.CLAIMABLE)
            .values_list("pk", flat=True)
        )
    with connection.cursor() as cursor:
        cursor.execute(_delivery_sql(_STILL_HELD_SQL), [array(ids), token, _CLAIMABLE])
        return {pk for (pk,) in cursor.fetchall()}


def _mark_sending(ids: Iterable[int], now: dt.datetime) -> None:
    if connection.vendor != "postgresql":
        Delivery.objects.filter(IdIn("pk", ids)).update(
            state=Delivery.State.SENDING,
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            claimed_until=None,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _delivery_sql(_MARK_SENDING_SQL), [str(Delivery.State.SENDING), now, array(ids)]
        )


def _extend_claim(ids: list[int], token: str, until: dt.datetime) -> None:
    """Keep the claim `token` on those of `ids` it still holds until `until`."""
    if connection.vendor != "postgresql":
        Delivery.objects.filter(
            IdIn("pk", ids), claim_token=token, state__in=Delivery.CLAIMABLE
        ).update(claimed_until=until)
        return
    with connection.cursor() as cursor:
        cursor.execute(_delivery_sql(_EXTEND_CLAIM_SQL), [until, array(ids), token, _CLAIMABLE])


def _release(ids: list[int], token: str, not_before: dt.datetime) -> None:
    """Give unsent rows back (FCM asked us to wait, or another job still sends their
    pairs) and come back for them later."""
    with transaction.atomic():
        mine = list(
            Delivery.objects.filter(
                IdIn("pk", ids), claim_token=token, state__in=Delivery.CLAIMABLE
            ).values_list("pk", flat=True)
        )
        Delivery.objects.filter(IdIn("pk", mine)).update(
            claim_token="",  # nosec B106 # releasing a job's claim, not a password
            claimed_until=None,
        )
        if mine:
            queue_deliveries(mine, not_before=not_before)


def _renew_lease(ids: list[int], token: str) -> None:
    """Extend this job's claim on the rows it has yet to send (one lease per slice, so
    the lease can be short and a dead worker's rows come back soon)."""
    lease = dt.timedelta(seconds=settings.PUSH_CLAIM_LEASE_SECONDS)
    _extend_claim(ids, token, timezone.now() + lease)


# Claimable rows, due, not claimed by a live lease, that no queued or running send
# job names: their job failed for good or never ran. (A row made less than
# PUSH_ORPHAN_GRACE_SECONDS ago is left to the job deferred with it.)
_ORPHANS_SQL = """
SELECT d.id FROM {table} AS d
WHERE d.state = ANY(%s)
  AND (d.claimed_until IS NULL OR d.claimed_until < %s)
  AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= %s)
  AND d.updated_at < %s
  AND NOT EXISTS (
    SELECT 1 FROM procrastinate_jobs AS j
    WHERE j.task_name = 'notifications.send_pushes'
      AND j.status IN ('todo', 'doing')
      AND j.args -> 'delivery_ids' @> to_jsonb(d.id)
  )
ORDER BY d.id
LIMIT 5000
"""


def _orphans(now: dt.datetime) -> list[int]:
    if connection.vendor != "postgresql":
        return []  # the embedded default runs jobs inline: no queue to lose them in
    grace = dt.timedelta(seconds=settings.PUSH_ORPHAN_GRACE_SECONDS)
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            _ORPHANS_SQL.format(table=table),
            [[str(state) for state in Delivery.CLAIMABLE], now, now - grace, now - grace],
        )
        return [row[0] for row in cursor.fetchall()]


def recover_pushes() -> int:
    """Queue again the rows a dead worker had claimed but never handed to FCM, and
    the rows no send job would ever look at again."""
    now = timezone.now()
    with transaction.atomic():
        orphans = _orphans(now)
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(state__in=Delivery.CLAIMABLE)
            .filter(Q(claimed_until__lt=now) | Q(pk__in=orphans))
            .values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=ids).update(
            claim_token="",  # nosec B106 # releasing a job's claim, not a password
            claimed_until=None,
        )
        if ids:
            logger.warning("requeueing %s push deliveries of a stopped worker", len(ids))
            queue_deliveries(ids)
    return len(ids)


# The error code of a delivery not sent because its user left the audience of the
# dossier after the push was made (left its organisation, stopped watching it):
# closed unsent, no fallback SMS.
NO_LONGER_RECIPIENT = "NO_LONGER_RECIPIENT"


def _claim(delivery_ids: Sequence[int], token: str) -> list[Outgoing]:
    """Lease the claimable rows among `delivery_ids` to this job (`token`), read as
    `Outgoing` in the same query that locks them; close those no longer to be sent
    (their user left the dossier's audience, their device stopped receiving)."""
    now = timezone.now()
    # A push made for a member of the dossier's organisation may wait hours (quiet
    # hours, retries): whether its user still hears about the dossier is decided
    # again here, in the claim's own query (the fan-out's rule, `recipients_for`).
    recipient = Q(notification__dossier__organisation_id__isnull=True) | still_recipient(
        "notification__dossier", "notification__user"
    )
    # The token may have been retired (logout, moved, unregistered) since the row was made.
    live = Exists(sendable_devices().filter(pk=OuterRef("device_id")))
    with transaction.atomic():
        found = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(IdIn("pk", delivery_ids), state__in=Delivery.CLAIMABLE)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLAIM_TOLERANCE))
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .annotate(
                still_recipient=ExpressionWrapper(recipient, output_field=BooleanField()),
                device_live=live,
            )
            .order_by("pk")
            .values_list(*_OUTGOING_VALUES, "still_recipient", "device_live")
        )
        left = [values[0] for values in found if not values[-2]]
        if left:
            Delivery.objects.filter(IdIn("pk", left)).update(
                state=Delivery.State.PERMANENT_FAILURE,
                error_code=NO_LONGER_RECIPIENT,
                error_message="Its user stopped following the dossier before it was sent.",
                next_attempt_at=None,
            )
        rows = [(Outgoing(*values[:-2]), values[-1]) for values in found if values[-2]]
        if not rows:
            return []
        notices = [
            row for row, live in rows if not live and row.type in SESSION_ENDING_NOTICE_TYPES
        ]
        reached: set[int] = set()
        if notices:
            reached = set(
                session_ending_notice_devices(
                    {str(row.session_id) for row in notices if row.session_id}
                )
                .filter(IdIn("pk", {row.device_id for row in notices}))
                .values_list("pk", flat=True)
            )
        claimed = [row for row, live in rows if live or row.device_id in reached]
        gone = [row for row, live in rows if not live and row.device_id not in reached]
        if gone:
            Delivery.objects.filter(IdIn("pk", [row.pk for row in gone])).update(
                state=Delivery.State.PERMANENT_FAILURE,
                error_code="DEVICE_INACTIVE",
                error_message="The device stopped receiving pushes before this one was sent.",
                next_attempt_at=None,
            )
            _fallback_where_all_failed({row.notification_id for row in gone if row.urgent})
        if claimed:
            lease = dt.timedelta(seconds=settings.PUSH_CLAIM_LEASE_SECONDS)
            Delivery.objects.filter(IdIn("pk", [row.pk for row in claimed])).update(
                claim_token=token, claimed_until=now + lease
            )
        return claimed


# The error code of a delivery not sent because a later one for the same device and
# dossier (the same collapse key) goes instead: not a failure, no fallback SMS.
SUPERSEDED = "SUPERSEDED"
_LIVE_STATES = (
    Delivery.State.CREATED,
    Delivery.State.TEMPORARY_FAILURE,
    Delivery.State.SENDING,
    Delivery.State.DELIVERED,
)


def _superseded(rows: list[Outgoing], now: dt.datetime) -> set[int]:
    """The rows among `rows` that a push for a later event of the same dossier, to the
    same device, replaces: one being sent or delivered, or, for a row that is not
    urgent, one that is due now.

    Pushes of one dossier to one device share its collapse key, so whichever FCM
    takes last is what the phone shows. They can come in any order: two events
    milliseconds apart are sent by two jobs side by side, pushes held for quiet
    hours are released together, and a retry may come after a later push went.
    Sending a push after a later one left would end the phone on the older status,
    so it is dropped. Of pushes not sent yet, only the latest event's goes (one
    push, not one per event, e.g. at the end of quiet hours), but an urgent push is
    only dropped for a later one that reached FCM: if that one then failed for good,
    the urgent one, with the fallback SMS it may lead to, would be lost with it.
    (The order holds all the same: `dossier_push_order` sends the later one after.)
    A later push not due yet (held until the morning, waiting for a retry) replaces
    nothing. "Later" is the event's id: a dossier's events are written under its row
    lock, so their ids follow the dossier's own order.

    One query per slice, whatever its size: only pushes of later events than the
    slice's earliest are read (usually none), one row per device and dossier.
    """
    candidates = [row for row in rows if row.dossier_id and row.event_id]
    if not candidates:
        return set()
    later = _later_pushes(
        {row.device_id for row in candidates},
        {row.dossier_id for row in candidates},
        min(row.event_id or 0 for row in candidates),
        now + CLAIM_TOLERANCE,
    )
    superseded = set()
    for row in candidates:
        event_id = row.event_id or 0
        sent, due = later.get((row.device_id, row.dossier_id), (0, 0))
        if sent > event_id or (due > event_id and not row.urgent):
            superseded.add(row.pk)
    return superseded


def _after_the_first_of_their_pair(rows: list[Outgoing]) -> set[int]:
    """The rows among `rows` with a push of an earlier event of the same dossier to the
    same device among `rows`."""
    seen: set[tuple[int, Any]] = set()
    after = set()
    for row in sorted(rows, key=lambda row: row.event_id or 0):
        if not (row.dossier_id and row.event_id):
            continue
        key = (row.device_id, row.dossier_id)
        if key in seen:
            after.add(row.pk)
        seen.add(key)
    return after


_SENT_STATES = (Delivery.State.SENDING, Delivery.State.DELIVERED)
# `_later_pushes` in SQL: the ORM's version spent ten times the client CPU of the
# statement (building the filters and the GROUP BY) once per slice. Only the models'
# table names and placeholders go into the SQL; the values travel as parameters.
_LATER_PUSHES_SQL = """
SELECT d.device_id, n.dossier_id,
       coalesce(max(n.event_id) FILTER (WHERE d.state = ANY(%s)), 0), max(n.event_id)
FROM {delivery} AS d JOIN {notification} AS n ON n.id = d.notification_id
WHERE d.device_id = ANY(%s::bigint[]) AND n.dossier_id = ANY(%s::uuid[]) AND n.event_id > %s
  AND d.state = ANY(%s) AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= %s)
GROUP BY d.device_id, n.dossier_id
"""


def _later_pushes(
    device_ids: set[int], dossier_ids: set[Any], after_event: int, due_by: dt.datetime
) -> dict[tuple[int, Any], tuple[int, int]]:
    """For each (device, dossier) among these with pushes of events after
    `after_event`: the latest such event whose push to the device is being sent or
    delivered (0: none), and the latest whose push is that or due by `due_by`."""
    if connection.vendor != "postgresql":  # the embedded default (SQLite)
        rows = (
            Delivery.objects.filter(
                device_id__in=device_ids,
                notification__dossier_id__in=dossier_ids,
                notification__event_id__gt=after_event,
                state__in=_LIVE_STATES,
            )
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=due_by))
            .values("device_id", "notification__dossier_id")
            .annotate(
                sent=Max("notification__event_id", filter=Q(state__in=_SENT_STATES)),
                due=Max("notification__event_id"),
            )
            .values_list("device_id", "notification__dossier_id", "sent", "due")
        )
        return {(device, dossier): (sent or 0, due) for device, dossier, sent, due in rows}
    sql = _LATER_PUSHES_SQL.format(
        delivery=connection.ops.quote_name(Delivery._meta.db_table),
        notification=connection.ops.quote_name(Notification._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                [str(state) for state in _SENT_STATES],
                array(sorted(device_ids)),
                array(sorted(dossier_ids)),
                after_event,
                [str(state) for state in _LIVE_STATES],
                due_by,
            ],
        )
        return {(device, dossier): (sent, due) for device, dossier, sent, due in cursor}


# Session-level advisory locks (one bigint each, apart from the two-int keys of
# other locks; the keys travel as parameters). A job first takes what is free
# without waiting (one statement, the usual case); when a pair is taken, it lets go
# of everything and waits for all its keys in one statement in key order (`unnest`
# keeps the sorted array's order), so that no two jobs can each hold a key the
# other waits for.
_TRY_LOCK_SQL = "SELECT k FROM unnest(%s::bigint[]) AS k WHERE pg_try_advisory_lock(k)"
_LOCK_SQL = "SELECT count(pg_advisory_lock(k)) FROM unnest(%s::bigint[]) AS k"
_UNLOCK_SQL = "SELECT count(pg_advisory_unlock(k)) FROM unnest(%s::bigint[]) AS k"
# pg_locks shows a bigint key as its high half (classid) and low half (objid). A wait
# that timed out leaves held the keys it took before the one it waited for (a
# session lock outlives the rollback of its statement): only those are let go of.
_UNLOCK_OWN_SQL = """
SELECT count(pg_advisory_unlock(k)) FROM unnest(%s::bigint[]) AS k
WHERE k IN (
  SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks AS l
  WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
    AND l.pid = pg_backend_pid()
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
"""
# The other sessions holding keys: named in the log, to find a frozen worker by.
_HOLDERS_SQL = """
SELECT DISTINCT l.pid FROM pg_locks AS l
WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
  AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY(%s::bigint[])
ORDER BY 1
"""
_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out


def _order_key(device_id: int, dossier_id: Any) -> int:
    digest = hashlib.blake2b(
        f"notifications.push-order:{device_id}:{dossier_id}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def dossier_push_order(rows: list[Outgoing]) -> Iterator[list[Outgoing]]:
    """Hand `rows` to FCM one (device, dossier) at a time: while a job holds a pair,
    from marking its row `sending` until FCM's answer is recorded, another job's
    hand-off of a push of that pair waits. Yields the rows that may go now: all of
    them, but those of a pair another job still held after
    PUSH_ORDER_LOCK_TIMEOUT_SECONDS (the caller gives those back to the queue).

    With `_superseded` deciding inside, under the lock, whichever of two pushes of a
    dossier to a device is handed over second sees the first one: the earlier event's
    push then closes SUPERSEDED (the later one is in flight or delivered), and the
    later event's push waits until the earlier one's answer is in, so FCM has taken
    it (or refused it) before the later one leaves. (Two such pushes in one slice:
    `_after_the_first_of_their_pair`.) The last push FCM takes for
    a pair is then the latest event's. A holder's slice takes FCM_TIMEOUT_SECONDS at
    most, then recording, and a worker that dies ends its database session, and its
    locks with it; but one that freezes without dying (a stopped process, a stuck
    network) keeps its session, so the wait is bounded: after the timeout the pushes
    of the pairs still taken are left out (queued again, unsent, in order when they
    come back), and those of other pairs in the slice go. The locks belong to the
    session: no transaction stays open while FCM answers (the event stream is not
    held back), and a job waiting for one holds no row lock yet (its wait runs in
    a transaction of its own that writes nothing, for `lock_timeout`). Cost: two
    statements per slice when no other job holds its pairs.

    Never inside a transaction: the rows are committed `sending` before FCM is
    called, and a session whose locks cannot be released is ended, which Django
    cannot do inside an atomic block. PostgreSQL only (the embedded default sends
    one job at a time). Session locks need a session of their own: connect workers
    to PostgreSQL directly or through a pooler in session mode (README, Deploying)."""
    _refuse_inside_a_transaction()
    pairs = {
        row.pk: _order_key(row.device_id, row.dossier_id)
        for row in rows
        if row.dossier_id and row.event_id
    }
    keys = sorted(set(pairs.values()))
    if not keys or connection.vendor != "postgresql":
        yield rows
        return
    held: set[int] = set()
    try:
        held = _take_order_locks(keys)
        ready = [row for row in rows if row.pk not in pairs or pairs[row.pk] in held]
        if len(ready) < len(rows):
            busy = set(keys) - held
            _log_busy_pairs(busy, [row.pk for row in rows if pairs.get(row.pk) in busy])
        yield ready
    finally:
        _unlock(sorted(held))


def _refuse_inside_a_transaction() -> None:
    # As `atomic(durable=True)` decides: a test case's own blocks around each test
    # (Django's TestCase) do not count.
    blocks = connection.atomic_blocks
    if blocks and all(getattr(block, "_from_testcase", False) for block in blocks):
        return
    if connection.in_atomic_block or not connection.get_autocommit():
        raise transaction.TransactionManagementError(
            "Pushes are sent outside any transaction: the rows must be committed "
            "`sending` before FCM is called, and the session's order locks released "
            "(or the session ended) after the slice."
        )


def _take_order_locks(keys: list[int]) -> set[int]:
    """The keys this session holds now: all of `keys`, or, when some were still taken
    after PUSH_ORDER_LOCK_TIMEOUT_SECONDS, those that were free then. Holds none of
    them when it raises."""
    held = _try_order_locks(keys)
    timeout = float(settings.PUSH_ORDER_LOCK_TIMEOUT_SECONDS)
    if len(held) == len(keys) or timeout <= 0:
        return held
    # Another job is sending a pair: wait for all of them, holding none meanwhile.
    _unlock(sorted(held))
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Never "0" (no limit): at least a millisecond.
            limit = f"{max(1, math.ceil(timeout * 1000))}ms"
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [limit])
            cursor.execute(_LOCK_SQL, [array(keys)])
        return set(keys)
    except BaseException as exc:
        _unlock_own(keys)
        timed_out = getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE
        if not (isinstance(exc, DatabaseError) and timed_out):
            raise
    return _try_order_locks(keys)


def _try_order_locks(keys: list[int]) -> set[int]:
    """The keys among `keys` that were free (now held), without waiting."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(_TRY_LOCK_SQL, [array(keys)])
            return {key for (key,) in cursor.fetchall()}
    except BaseException:
        _unlock_own(keys)  # the statement may have taken some before it failed
        raise


def _log_busy_pairs(keys: set[int], delivery_ids: list[int]) -> None:
    # Delivery ids and database session ids only: no token, no person, no dossier.
    try:
        with connection.cursor() as cursor:
            cursor.execute(_HOLDERS_SQL, [array(sorted(keys))])
            holders: list[int] | str = [pid for (pid,) in cursor.fetchall()] or "none now"
    except DatabaseError:
        holders = "unknown"
    logger.warning(
        "push order locks of %s (device, dossier) pairs still held after %ss by database "
        "session(s) %s; push deliveries %s queued again",
        len(keys),
        settings.PUSH_ORDER_LOCK_TIMEOUT_SECONDS,
        holders,  # ids as integers: kept by the log's redaction (backend/logging.py)
        list(delivery_ids),
    )


def _unlock(keys: list[int]) -> None:
    if keys:
        _run_or_end_session(_UNLOCK_SQL, keys)


def _unlock_own(keys: list[int]) -> None:
    _run_or_end_session(_UNLOCK_OWN_SQL, keys)


def _run_or_end_session(sql: str, keys: list[int]) -> None:
    """Let go of order locks; if that fails, end the database session, which releases
    them, so that none outlives the slice on a connection used again."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, [array(keys)])
    except BaseException as exc:
        logger.warning("push order locks not released; ending the database session", exc_info=True)
        _end_session()
        if not isinstance(exc, Exception):
            raise


def _end_session() -> None:
    """Close the driver's connection itself: Django's `close` would hand a pooled one
    (DATABASE_POOL) back to its pool with its session, and its locks, alive; a closed
    one the pool discards."""
    raw = connection.connection
    if raw is not None:
        with contextlib.suppress(Exception):
            raw.close()
    with contextlib.suppress(Exception):
        connection.close()


def collapse_id(dossier_id: uuid.UUID | None, notification_id: int) -> str:
    if dossier_id is not None:
        return f"dossier-{uuid.UUID(str(dossier_id)).hex}"
    return f"notification-{notification_id}"


def _pushes_for(rows: list[Outgoing]) -> list[Push]:
    """The push of each row: one per notification, fitted and encoded once, then given
    to each of its devices (`Push.to`)."""
    users = {row.user_id for row in rows}
    unread = dict(
        Notification.objects.filter(IdIn("user_id", users), read_at__isnull=True)
        .values("user_id")
        .annotate(count=Count("id"))
        .values_list("user_id", "count")
    )
    made: dict[int, Push] = {}
    pushes = []
    for row in rows:
        push = made.get(row.notification_id)
        if push is None:
            data = {key: str(value) for key, value in row.data.items()}
            data["notification_id"] = str(row.notification_id)
            push = made[row.notification_id] = fit(
                Push(
                    token=row.token,
                    title=row.title,
                    body=row.body,
                    data=data,
                    collapse_id=collapse_id(row.dossier_id, row.notification_id),
                    urgent=row.urgent,
                    badge=int(unread.get(row.user_id, 0)),
                    channel_id=channel_for(row.category, row.urgent),
                )
            )
        pushes.append(push.to(row.token))
    return pushes


# What FCM's answer makes of a row: its id, state, fcm_message_id, error_code,
# error_message and next_attempt_at.
Answer = tuple[int, str, str, str, str, dt.datetime | None]


def _record(rows: list[Outgoing], results: list[SendResult]) -> None:
    now = timezone.now()
    jitter = jitter_fraction()
    answers: list[Answer] = []
    retries: dict[float, list[int]] = defaultdict(list)
    dead_tokens: list[tuple[int, str, str]] = []
    finished_urgent: set[int] = set()
    for row, result in zip(rows, results, strict=True):
        error_message = result.error_message[:500]
        if result.ok:
            answers.append(
                (
                    row.pk,
                    Delivery.State.DELIVERED,
                    result.message_id[:255],
                    result.error_code,
                    error_message,
                    None,
                )
            )
            continue
        next_attempt_at = None
        if result.permanent:
            state = Delivery.State.PERMANENT_FAILURE
            if result.token_is_dead:
                dead_tokens.append((row.device_id, row.token, result.error_code))
            elif result.error_code == "INVALID_ARGUMENT":
                logger.error(
                    "FCM refused push delivery %s as INVALID_ARGUMENT: %s",
                    row.pk,
                    result.error_message,
                )
        elif row.attempts >= settings.PUSH_MAX_ATTEMPTS:
            state = Delivery.State.PERMANENT_FAILURE
            error_message = f"Gave up after {row.attempts} tries: {result.error_message}"[:500]
            logger.warning("push delivery %s gave up: %s", row.pk, result.error_code)
        else:
            delay = retry_delay(row.attempts, result, jitter)
            state = Delivery.State.TEMPORARY_FAILURE
            next_attempt_at = now + dt.timedelta(seconds=delay)
            retries[delay].append(row.pk)
            if result.throttled:
                _pause(next_attempt_at)
        if state == Delivery.State.PERMANENT_FAILURE and row.urgent:
            finished_urgent.add(row.notification_id)
        answers.append((row.pk, state, "", result.error_code, error_message, next_attempt_at))
    with transaction.atomic():
        _save_answers(answers, now)
        for device_id, token, code in dead_tokens:
            # Only the token we sent to: the app may have registered a new one meanwhile.
            Device.objects.filter(pk=device_id, token=token, active=True).update(
                active=False, deactivated_at=now, deactivated_reason=code.lower()
            )
        for delay, ids in retries.items():
            queue_deliveries(ids, not_before=now + dt.timedelta(seconds=delay))
        _fallback_where_all_failed(finished_urgent)


_SAVE_ANSWERS_SQL = (
    "UPDATE {table} AS d SET state = v.state, fcm_message_id = v.fcm_message_id, "
    "error_code = v.error_code, error_message = v.error_message, "
    "next_attempt_at = v.next_attempt_at, updated_at = %s "
    "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, state text, fcm_message_id text, "
    "error_code text, error_message text, next_attempt_at timestamptz) "
    "WHERE d.id = v.id AND d.state = %s"
)


def _save_answers(answers: list[Answer], now: dt.datetime) -> None:
    """The answers of one slice in one statement, of the same text whatever their
    number: they go as one JSON parameter. (`bulk_update` builds a CASE per field and
    row: on a slice of 50 it took more of the worker's time than the sends; a VALUES
    list made six parameters a row for psycopg to quote, in a statement it parsed
    again for each number of rows.)

    Only rows still `sending` take their answer: one that `fail_stale_sending` closed
    meanwhile stays closed (a late answer must not make it sendable again)."""
    if connection.vendor != "postgresql":
        # The embedded default (SQLite): one UPDATE per row.
        for pk, state, message_id, error_code, error_message, next_attempt_at in answers:
            Delivery.objects.filter(pk=pk, state=Delivery.State.SENDING).update(
                state=state,
                fcm_message_id=message_id,
                error_code=error_code,
                error_message=error_message,
                next_attempt_at=next_attempt_at,
                updated_at=now,
            )
        return
    # PostgreSQL only (jsonb_to_recordset). Only the model's own table name goes into
    # the SQL; the values travel as parameters.
    rows = json.dumps(
        [
            {
                "id": pk,
                "state": state,
                "fcm_message_id": message_id,
                "error_code": error_code,
                "error_message": error_message,
                "next_attempt_at": next_attempt_at and next_attempt_at.isoformat(),
            }
            for pk, state, message_id, error_code, error_message, next_attempt_at in answers
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _SAVE_ANSWERS_SQL.format(table=connection.ops.quote_name(Delivery._meta.db_table)),
            [now, rows, str(Delivery.State.SENDING)],
        )


def _fallback_where_all_failed(notification_ids: Iterable[int]) -> None:
    """Queue the SMS of each urgent notification whose every push failed for good (if
    its user still follows the dossier: `request_fallback_sms`)."""
    ids = sorted(set(notification_ids))
    if not ids:
        return
    # Lock the notifications: two jobs finishing its last deliveries at once must
    # see each other's answers, or neither would send the SMS.
    list(
        Notification.objects.select_for_update().filter(IdIn("pk", ids)).order_by("pk").values("pk")
    )
    for notification_id in ids:
        # A superseded push was replaced by a later one for the same dossier; one
        # no longer for its user closes the notification with no SMS.
        still_open = (
            Delivery.objects.filter(notification_id=notification_id)
            .exclude(
                Q(state=Delivery.State.PERMANENT_FAILURE)
                & ~Q(error_code__in=(SUPERSEDED, NO_LONGER_RECIPIENT))
            )
            .exists()
        )
        if still_open:
            continue
        request_fallback_sms(notification_id)


def still_for_its_user() -> Q:
    """Notifications whose user still follows their dossier (`recipients_for`, as the
    claim of a push decides it): the applicant, or a member of the dossier's
    organisation who watches it. One about no dossier, or a dossier of no
    organisation, always is."""
    return (
        Q(dossier__isnull=True)
        | Q(dossier__organisation_id__isnull=True)
        | still_recipient("dossier", "user")
    )


def request_fallback_sms(notification_id: int) -> bool:
    """Mark an urgent notification for SMS (once) and defer the job; in a transaction.

    Not for a user who stopped following the dossier since the event (left the
    organisation, stopped watching it): their pushes were for a member, and so
    would the SMS be."""
    marked = (
        Notification.objects.filter(
            pk=notification_id, urgent=True, sms_status=Notification.SmsStatus.NONE
        )
        .filter(still_for_its_user())
        .exclude(sms_text="")
        .update(sms_status=Notification.SmsStatus.PENDING)
    )
    if marked:
        defer("notifications.send_fallback_sms", notification_id=notification_id)
    return bool(marked)


def send_fallback_sms(notification_id: int) -> bool:
    """Send the fallback SMS of a notification, at most once, if its user still follows
    the dossier (the job may run a while after it was asked for)."""
    pending = Notification.objects.filter(
        pk=notification_id, sms_status=Notification.SmsStatus.PENDING
    )
    claimed = pending.filter(still_for_its_user()).update(sms_status=Notification.SmsStatus.SENDING)
    if not claimed:
        # Still pending: its user left the audience meanwhile; the SMS is not needed.
        if pending.update(sms_status=Notification.SmsStatus.NONE):
            logger.info(
                "fallback SMS of notification %s dropped: no longer its user's", notification_id
            )
        return False
    notification = Notification.objects.select_related("user").get(pk=notification_id)
    try:
        send_sms(notification.user.phone, notification.sms_text, purpose="notice.dossier_update")
    except SmsError as exc:
        logger.warning("fallback SMS of notification %s failed: %s", notification_id, exc)
        Notification.objects.filter(pk=notification_id).update(
            sms_status=Notification.SmsStatus.FAILED
        )
        return False
    Notification.objects.filter(pk=notification_id).update(
        sms_status=Notification.SmsStatus.SENT, sms_sent_at=timezone.now()
    )
    return True


def fail_stale_sending() -> int:
    """Rows left in `sending` by a crashed worker: FCM may have taken them, so they
    are not sent again (at most once); they become permanent failures, on record.

    Whether FCM took them is unknown, so an urgent notification whose pushes all
    ended so gets its fallback SMS, as when they all failed: the citizen must learn
    it, and a push the phone may have shown is cheaper than one it did not."""
    cutoff = timezone.now() - dt.timedelta(minutes=settings.PUSH_STALE_SENDING_MINUTES)
    with transaction.atomic():
        stale = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=Delivery.State.SENDING, last_attempt_at__lt=cutoff)
            .values_list("pk", "notification_id", "notification__urgent")
        )
        if not stale:
            return 0
        Delivery.objects.filter(pk__in=[pk for pk, _, _ in stale]).update(
            state=Delivery.State.PERMANENT_FAILURE,
            error_code="INTERRUPTED",
            error_message="The worker stopped while sending; not retried to avoid a duplicate.",
        )
        _fallback_where_all_failed({notification for _, notification, urgent in stale if urgent})
    return len(stale)


def retire_devices_of_ended_sessions() -> int:
    """Deactivate the tokens of sessions that signed out, were revoked or reached
    their SESSION_MAX_AGE_DAYS.

    They already get nothing (`sendable_devices` checks the session); this makes
    the device list and the admin say so too. (The app registers its token again
    with the session it signs in to next.)
    """
    ended = Device.objects.filter(active=True).filter(
        Q(session__isnull=True)
        | Q(session__revoked_at__isnull=False)
        | Q(session__created_at__lte=signed_in_since())
    )
    return deactivate_devices(ended.values_list("pk", flat=True), "session_ended")


def prune_devices() -> int:
    """Delete tokens unseen (nor their session) for DEVICE_PRUNE_DAYS."""
    cutoff = timezone.now() - dt.timedelta(days=settings.DEVICE_PRUNE_DAYS)
    _, deleted = (
        Device.objects.filter(last_seen_at__lt=cutoff)
        .exclude(session__last_seen_at__gte=cutoff)
        .delete()
    )
    return deleted.get(Device._meta.label, 0)
