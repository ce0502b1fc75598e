"""No write transaction is open while a worker waits on FCM (503s and 429s included):
one would hold back every live WebSocket frame in the cluster (tracking/stream.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from dossiers.events import record_event
from dossiers.models import Dossier
from notifications import fcm as fcm_module
from tests.factories import make_dossier, make_user
from tests.notifications.conftest import register, run_worker_until_idle

pytestmark = pytest.mark.django_db(transaction=True)


def open_write_transactions() -> dict[tuple[int, Any], str]:
    """Other sessions of this database holding a transaction id, or idle in one, by
    (pid, the transaction's start): what each last ran."""
    params = connection.get_connection_params()
    for sync_only in ("cursor_factory", "context"):
        params.pop(sync_only, None)
    with psycopg.connect(**params, autocommit=True) as probe:
        rows = probe.execute(
            "SELECT pid, xact_start, left(query, 120) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND (backend_xid IS NOT NULL OR state LIKE 'idle in transaction%%')"
        ).fetchall()
    return {(pid, started): query for pid, started, query in rows}


def test_no_transaction_is_open_while_fcm_is_called(fcm, monkeypatch, settings) -> None:
    settings.PUSH_RETRY_BASE_SECONDS = 1
    # Each send is held a while, so that a transaction open both when the job starts
    # waiting for answers and when they come is one held across the wait: the worker's
    # own bookkeeping (fetching the next job, its heartbeat) opens short transactions of
    # its own meanwhile, on other connections, which a single look may catch.
    monkeypatch.setattr(fcm, "delay", 0.2)
    seen: list[dict[tuple[int, Any], str]] = []
    own: list[bool] = []
    real_send = fcm_module.FcmGateway.send_as_answered

    def send_as_answered(
        self: fcm_module.FcmGateway, pushes: list[Any], slots: Any = None
    ) -> Iterator[Any]:
        # The job records answers as they come: each time it waits for the next ones.
        answers = real_send(self, pushes, slots)
        while True:
            own.append(connection.in_atomic_block)  # the waiting job's own connection
            before = open_write_transactions()
            try:
                batch = next(answers)
            except StopIteration:
                return
            after = open_write_transactions()
            seen.append({key: query for key, query in after.items() if key in before})
            yield batch

    monkeypatch.setattr(fcm_module.FcmGateway, "send_as_answered", send_as_answered)
    user = make_user()
    for n in range(3):
        register(user, f"tok-open-tx-{n}")
    fcm.script("tok-open-tx-0", "UNAVAILABLE")
    fcm.script("tok-open-tx-1", "QUOTA_EXCEEDED")
    dossier = make_dossier(user, status=Dossier.Status.PROCESSING)
    with transaction.atomic():
        record_event(dossier, type="dossier.completed", actor_type="agency")

    run_worker_until_idle()

    assert seen  # FCM was called...
    assert own == [False for _ in own]  # ...the job waited outside any transaction...
    assert seen == [{} for _ in seen]  # ...and no write transaction spanned a wait
