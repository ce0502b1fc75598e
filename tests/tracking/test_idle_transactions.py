"""A session left idle inside a transaction that took an event id holds back every
live update after that id (the stream sends an event only once every smaller id is
settled): the app's connections ask PostgreSQL to end such a session, so the log
settles past it within seconds."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from tests.backend.test_channel_layer import settings_process
from tracking import stream

pytestmark = pytest.mark.django_db

OPTIONS_CHECK = """
import django
django.setup()
from django.conf import settings
print(settings.DATABASES["default"]["OPTIONS"].get("options", ""))
"""


def test_the_apps_connections_end_sessions_idle_in_a_transaction() -> None:
    result = settings_process(
        OPTIONS_CHECK,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/citizen",
        DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS="10",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "-c idle_in_transaction_session_timeout=10000"
    off = settings_process(
        OPTIONS_CHECK,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/citizen",
        DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS="0",
    )
    assert off.stdout.strip() == ""


def _running(xid: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_xact_status(%s::xid8)", [xid])
        return bool(cursor.fetchone()[0] == "in progress")


def test_a_session_left_idle_in_a_transaction_stops_holding_back_the_stream() -> None:
    params = connection.get_connection_params()
    for sync_only in ("cursor_factory", "context"):
        params.pop(sync_only, None)
    params["options"] = "-c idle_in_transaction_session_timeout=3000"
    stuck = psycopg.connect(**params)  # not autocommit: the first statement opens a transaction
    try:
        # As the log's trigger does: the event writer's lock first, then an id of the log.
        xid = str(stuck.execute("SELECT pg_current_xact_id()").fetchone()[0])
        stuck.execute("SELECT pg_advisory_xact_lock_shared(21586, 1)")
        held = int(stuck.execute(f"SELECT nextval('{stream.SEQUENCE}')").fetchone()[0])
        probe = stream.Probe()
        looks_while_alive = 0
        deadline = time.monotonic() + 60
        settled = 0
        while settled < held:
            assert time.monotonic() < deadline, "the idle transaction still holds the log"
            alive = _running(xid)
            with connection.cursor() as cursor:
                cursor.execute(stream.PROBE_SQL)
                settled = max(settled, probe.looked(*cursor.fetchone()) or 0)
            covering = probe.pending is not None and probe.pending[0] >= held
            if settled < held and covering and alive:
                looks_while_alive += 1  # the probe covered the id, and waited for it
            time.sleep(0.05)
        assert looks_while_alive >= 1  # held back while the session lived
        assert not _running(xid)  # and settled only once PostgreSQL had ended it
        with pytest.raises(psycopg.Error, match="idle-in-transaction"):
            stuck.execute("SELECT 1")
    finally:
        stuck.close()
