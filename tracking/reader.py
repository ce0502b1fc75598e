"""The read of the event log on each hint, on the socket's own event loop (PostgreSQL).

A hint's path to the phone is: Redis → the server's event loop → a read of the
log → the socket. Through `database_sync_to_async` the read would hop to
channels' database thread and back: two thread wake-ups, which on a busy
machine cost more than the query. So each event loop of a server process keeps
one asynchronous psycopg connection, in autocommit, for these reads, shared by
its sockets (psycopg runs their queries one after the other, as the database
thread did). Idle between reads it holds no snapshot, so it never holds back
the horizon (tracking/stream.py). It is opened on the first socket's first
read and closed when the loop's last socket closes; after an error it is
closed and the next read opens a new one.

The query and the frames are tracking/stream.py's (`pending_query`,
`advance`): one code path for the sync `pull` and this one.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

import psycopg
from channels.db import database_sync_to_async
from django.db import connection

from tracking import stream
from tracking.payloads import EventFrame


@dataclass
class _LoopState:
    sockets: int = 0
    connection: psycopg.AsyncConnection[Any] | None = None
    lock: asyncio.Lock | None = None


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
    weakref.WeakKeyDictionary()
)


def _connection_params() -> dict[str, Any]:
    """Django's own connection parameters, less its sync-only cursor and adapters."""
    params = connection.get_connection_params()
    for sync_only in ("cursor_factory", "context"):
        params.pop(sync_only, None)
    params["autocommit"] = True
    return params


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
        state.sockets += 1
        self.state = state

    async def close(self) -> None:
        state, self.state = self.state, None
        if state is None:
            return
        state.sockets -= 1
        if state.sockets == 0 and state.connection is not None:
            spent, state.connection = state.connection, None
            await spent.close()

    async def pull(self, limit: int) -> list[EventFrame]:
        """`stream.pull`, read here: the next final events after the cursor, as frames."""
        state = self.state
        if state is None or state.lock is None:
            raise RuntimeError("Reader.pull before Reader.open")
        sql, params = stream.pending_query(self.subscription, limit + 1)
        async with state.lock:
            if state.connection is None or state.connection.closed:
                state.connection = await psycopg.AsyncConnection.connect(**self.params)
            try:
                cursor = await state.connection.execute(sql, params)
                found = await cursor.fetchall()
            except psycopg.Error:
                spent, state.connection = state.connection, None
                await spent.close()
                raise
        current, rows = stream.rows_of(found)
        return stream.advance(self.subscription, rows, limit, current)
