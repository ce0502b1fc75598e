"""A session left idle inside a transaction holds back every live update (the stream
sends only events below the cluster's horizon): the app's connections ask PostgreSQL
to end such a session, so the horizon moves on within seconds."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from tests.backend.test_channel_layer import settings_process
from tracking.stream import horizon

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


def test_a_session_left_idle_in_a_transaction_stops_holding_back_the_stream() -> None:
    params = connection.get_connection_params()
    for sync_only in ("cursor_factory", "context"):
        params.pop(sync_only, None)
    params["options"] = "-c idle_in_transaction_session_timeout=1000"
    stuck = psycopg.connect(**params)  # not autocommit: the first statement opens a transaction
    try:
        txid = int(stuck.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0])
        assert horizon() <= txid  # held back: events after it wait for it
        deadline = time.monotonic() + 15
        while horizon() <= txid:
            assert time.monotonic() < deadline, "the idle transaction still holds the horizon"
            time.sleep(0.1)
        with pytest.raises(psycopg.Error, match="idle-in-transaction"):
            stuck.execute("SELECT 1")
    finally:
        stuck.close()
