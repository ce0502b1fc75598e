"""The read of the event log on each hint, on the socket's own event loop (PostgreSQL).

A hint's path to the phone is: Redis → the server's event loop → a read of the
log → the socket. Through `database_sync_to_async` the read would hop to
channels' database thread and back: two thread wake-ups, which on a busy
machine cost more than the query. So each event loop of a server process keeps
one asynchronous psycopg connection, in autocommit, for these reads, shared by
its sockets (psycopg runs their queries one after the other, as the database
thread did). Idle between reads it holds no snapshot. It is opened on the
first socket's first read and closed when the loop's last socket closes, once no
statement runs on it (uvloop aborts the process when a socket it waits on is
closed under it), even if that socket's disconnect is cancelled meanwhile (the
closing is a task of its own); after an error it is closed and the next read
opens a new one. Its statements are prepared (WS_PREPARED_STATEMENTS): in a warm session
the log's read took 0.26 ms to plan and 0.05 ms to run.

The query and the frames are tracking/stream.py's (`pending_query`,
`advance`): one code path for the sync `pull` and this one.

Held events (committed, but after an id that is not settled: an older event
whose transaction is still open, or a rolled-back one; tracking/stream.py)
are looked at again when the log is settled up to them. A socket's own read
settles what it can see; and one watch per event loop looks at the whole log
(one cheap `SELECT`, whatever the number of waiting sockets: how far the
visible ids run with no gap, and a step of the probe for gaps nobody will
fill) on a back-off: first after WS_RECHECK_FIRST_SECONDS, then each interval
WS_RECHECK_GROWTH times the one before (1.25) while nothing it waits for has
become final, up to WS_RECHECK_SECONDS. It wakes each socket whose held event
is now settled, and that socket reads the log again (the read, not the watch,
decides what is sent: the watch is only a wake-up). A read that settles
further wakes the loop's other waiters it released too. So a frame held
behind another event's transaction of d seconds waits about a quarter of d
more at most (plus the first interval), not up to WS_RECHECK_SECONDS; a wait
of d costs about log(1 + d / (4 × first)) / log(1.25) looks (6 for 20 ms, 22
for 1 s, with a first of 2 ms; doubling made it 4 and 9, but let a frame wait
up to twice as long as it had to). A socket with nothing held never waits on
the watch, and the watch runs only while some socket waits.

A process settles the log once before its first socket starts
(`settle_first`): on a connection of its own, without blocking the loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

import psycopg
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from tracking import stream


@dataclass
class _Waiter:
    """A socket waiting for its held event to become final."""

    subscription: stream.Subscription
    woken: asyncio.Future[None]
    due: float  # the loop time of its next look
    delay: float  # the wait before that look (grows after each look that finds it held)


@dataclass
class _LoopState:
    sockets: int = 0
    connection: psycopg.AsyncConnection[Any] | None = None
    cursor: psycopg.AsyncCursor[Any] | None = None
    lock: asyncio.Lock | None = None
    waiters: list[_Waiter] = field(default_factory=list)
    watch: asyncio.Task[None] | None = None
    arrived: asyncio.Event | None = None  # a new waiter may be due sooner than the watch sleeps
    # The watch's probe: its looks are statements of this loop's connection, one
    # after the other.
    probe: stream.Probe = field(default_factory=stream.Probe)
    # What the watch did, for tests and the benchmark's profile: looks at the
    # log, and the delays its waiters were given after a look found them held.
    looks: int = 0
    delays: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=64))

    async def execute(
        self, params: dict[str, Any], sql: str, args: tuple[Any, ...] = ()
    ) -> list[tuple[Any, ...]]:
        """One statement on the loop's shared connection (opened if need be)."""
        if self.lock is None:
            raise RuntimeError("a read before Reader.open")
        async with self.lock:
            if self.connection is None or self.connection.closed or self.cursor is None:
                self.connection = await psycopg.AsyncConnection.connect(**params)
                # One cursor for every read of the connection (they run one at a
                # time): a cursor made per read set up its adapters each time.
                self.cursor = self.connection.cursor()
            try:
                await self.cursor.execute(sql, args)
                return await self.cursor.fetchall()
            except psycopg.Error:
                spent, self.connection, self.cursor = self.connection, None, None
                await spent.close()
                raise


logger = logging.getLogger(__name__)

_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
    weakref.WeakKeyDictionary()
)


def _connection_params() -> dict[str, Any]:
    """Django's own connection parameters, less its sync-only cursor and adapters."""
    params = connection.get_connection_params()
    for sync_only in ("cursor_factory", "context"):
        params.pop(sync_only, None)
    params["autocommit"] = True
    # Prepared from the first execution: the same few statements run on every
    # hint, and planning the log's read took five times longer than running it.
    params["prepare_threshold"] = 0 if settings.WS_PREPARED_STATEMENTS else None
    return params


def _next_delay(delay: float) -> float:
    return stream.grown(delay, settings.WS_RECHECK_SECONDS, settings.WS_RECHECK_GROWTH)


def _first_delay() -> float:
    return next(stream.recheck_backoff())


async def settle_first() -> None:
    """The process's first settling of the log (stream.settle's probe), before its
    first socket starts: on a connection of its own, the loop free meanwhile."""
    if stream.SETTLED.value is not None:
        return
    params = await database_sync_to_async(_connection_params)()
    params["prepare_threshold"] = None
    probe = stream.Probe()
    delays = stream.recheck_backoff()
    async with await psycopg.AsyncConnection.connect(**params) as conn:
        while stream.SETTLED.value is None:
            cursor = await conn.execute(stream.PROBE_SQL)
            if stream.first_look(probe, await cursor.fetchone() or (0, [])):
                await asyncio.sleep(next(delays))


def _prepare(subscription: stream.Subscription) -> dict[str, Any]:
    stream.pending_query(subscription, 0)  # compiles the socket's SQL once
    return _connection_params()


class Reader:
    """One socket's reads; `open` before the first, `close` when the socket ends."""

    def __init__(self, subscription: stream.Subscription) -> None:
        self.subscription = subscription
        self.params: dict[str, Any] = {}
        self.state: _LoopState | None = None

    async def open(self) -> None:
        self.params = await database_sync_to_async(_prepare)(self.subscription)
        state = _loops.setdefault(asyncio.get_running_loop(), _LoopState())
        if state.lock is None:
            state.lock = asyncio.Lock()
            state.arrived = asyncio.Event()
        state.sockets += 1
        self.state = state

    async def close(self) -> None:
        """The socket's end. The loop's last socket closes the connection; cancelling
        this (a socket's disconnect cancelled, as a server's shutdown does) does not
        stop that: the closing runs on as a task of its own (`_close_when_idle`)."""
        state, self.state = self.state, None
        if state is None:
            return
        state.sockets -= 1
        if state.sockets or state.lock is None:
            return
        # The loop's last socket: stop the watch and close the connection, but only
        # once no statement runs on it (the lock). The watch's look may be in
        # flight, its socket watched by the loop (add_reader): closing the socket
        # under that wait made uvloop abort the process (libuv's epoll_ctl on a
        # closed fd, "Fatal Python error: Aborted"). Cancelled, the look ends in
        # psycopg (the query is cancelled, the socket no longer watched) first.
        watch, state.watch = state.watch, None
        if watch is not None:
            watch.cancel()
        # Shielded: cancelled while it waits for the lock, the close was skipped and
        # the connection left open, to the garbage collector.
        closing = asyncio.ensure_future(_close_when_idle(state))
        _closing.add(closing)  # the loop keeps only a weak reference to a task
        closing.add_done_callback(_closing.discard)
        await asyncio.shield(closing)

    async def pull(self, limit: int) -> list[str]:
        """`stream.pull`, read here: the next final events after the cursor, as the
        frames' JSON texts (`stream.frame_texts`)."""
        state = self.state
        if state is None:
            raise RuntimeError("Reader.pull before Reader.open")
        sql, params = stream.pending_query(self.subscription, limit + 1)
        found = await state.execute(self.params, sql, params)
        settled, rows = stream.rows_of(found)
        before = stream.SETTLED.value
        batch = stream.advance(self.subscription, rows, limit, settled)
        if stream.SETTLED.value != before:
            _wake_released(state)
        return stream.frame_texts(batch, self.subscription.language) if batch else []

    async def until_final(self) -> None:
        """Return once the log is settled up to the socket's held event (or nothing
        is held): then a `pull` can send it. Cancel it to stop waiting (a timeout)."""
        state = self.state
        if state is None or state.arrived is None:
            raise RuntimeError("Reader.until_final before Reader.open")
        if stream.released(self.subscription):
            return
        loop = asyncio.get_running_loop()
        delay = _first_delay()
        waiter = _Waiter(self.subscription, loop.create_future(), loop.time() + delay, delay)
        state.waiters.append(waiter)
        state.arrived.set()
        if state.watch is None or state.watch.done():
            state.watch = asyncio.create_task(_watch(state, self.params))
        try:
            await waiter.woken
        finally:
            if waiter in state.waiters:
                state.waiters.remove(waiter)


# The closings under way (`Reader.close`), held until they end.
_closing: set[asyncio.Future[None]] = set()


async def _close_when_idle(state: _LoopState) -> None:
    """Close the loop's connection once no statement runs on it, unless a socket
    opened meanwhile (it goes on using it).

    Cancelled itself while it waits (a loop's end cancels every task left), it
    waits on, then closes and ends cancelled: the statement it waits for, cancelled
    too, ends within psycopg's bounds (its cancel request and the wait for the
    server's answer, 5 s each), and closing the connection under it would abort a
    uvloop server."""
    lock = state.lock
    if lock is None:
        return
    cancelled = False
    while True:
        try:
            await lock.acquire()
            break
        except asyncio.CancelledError:
            cancelled = True
    try:
        if state.sockets == 0 and state.connection is not None:
            spent, state.connection, state.cursor = state.connection, None, None
            await spent.close()
    finally:
        lock.release()
    if cancelled:
        raise asyncio.CancelledError


def _wake_released(state: _LoopState) -> None:
    """Wake the waiters whose held event is settled by now."""
    for waiter in list(state.waiters):
        if waiter.woken.done() or stream.released(waiter.subscription):
            if not waiter.woken.done():
                waiter.woken.set_result(None)
            state.waiters.remove(waiter)


async def _watch(state: _LoopState, params: dict[str, Any]) -> None:
    """While sockets wait: look at the log when the first of them is due, wake
    those it settled, lengthen the wait of the others."""
    if state.arrived is None:
        raise RuntimeError("the watch started before Reader.open")
    loop = asyncio.get_running_loop()
    while state.waiters:
        state.arrived.clear()
        wait = min(waiter.due for waiter in state.waiters) - loop.time()
        if wait > 0:
            # A new waiter may be due sooner than the others: then look again.
            try:
                await asyncio.wait_for(state.arrived.wait(), wait)
                continue
            except TimeoutError:
                pass
        try:
            found = await state.execute(params, stream.look_sql(), stream.settle_params())
        except Exception:  # wake them all: their own reads retry, or meet the error
            logger.warning("the event log could not be looked at", exc_info=True)
            for waiter in state.waiters:
                if not waiter.woken.done():
                    waiter.woken.set_result(None)
            state.waiters.clear()
            return
        state.looks += 1
        stream.looked(state.probe, found[0])
        _wake_released(state)
        now = loop.time()
        for waiter in state.waiters:
            if waiter.due <= now:
                waiter.delay = _next_delay(waiter.delay)
                waiter.due = now + waiter.delay
                state.delays.append(waiter.delay)
