"""The reader's connection on uvloop, the loop the server runs on.

uvloop aborts the whole process when a socket it waits on is closed under the
wait (libuv's epoll_ctl on a closed fd: "Fatal Python error: Aborted"), so these
run in a process of their own: a crash is then a failed test, not the end of the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

# The watch's look queued behind a socket's read (the loop's lock); the read ends,
# and in the same batch of callbacks the look starts (its socket now watched by
# the loop) and the loop's last socket closes.
LAST_SOCKET_CLOSES_AS_A_LOOK_STARTS = """
import asyncio, json, os
import django
django.setup()
import uvloop
from psycopg import waiting
from tracking import reader

PARAMS = {**json.loads(os.environ["READER_PARAMS"]), "autocommit": True}
# psycopg lets the loop run before it sends a statement when 5 ms passed since it
# last did (a busy machine): then the look would start one batch later.
waiting.MAX_BUSY_TIME = float("inf")


async def main():
    state = reader._LoopState(sockets=1, lock=asyncio.Lock(), arrived=asyncio.Event())
    last = reader.Reader.__new__(reader.Reader)
    last.state = state
    await state.execute(PARAMS, "SELECT 1")  # the loop's connection is open
    await state.lock.acquire()  # a socket's read
    look = state.watch = asyncio.create_task(state.execute(PARAMS, "SELECT pg_sleep(60)"))
    await asyncio.sleep(0)  # one step of the loop (no wait): the look now waits for the lock
    state.lock.release()  # the read ends: the look starts in the next batch ...
    await asyncio.create_task(last.close())  # ... and so does the close
    await asyncio.gather(look, return_exceptions=True)
    print(json.dumps({"look_cancelled": look.cancelled(), "connection": repr(state.connection)}))


uvloop.run(main())
"""


def _params() -> dict[str, Any]:
    """The test server's, on its maintenance database (Django's own for creating the
    test database): a process that aborts leaves its statement running on the
    server, till the server sees the client gone (within a second here)."""
    params = connection.get_connection_params()
    return {
        **{key: params[key] for key in ("host", "port", "user", "password") if key in params},
        "dbname": "postgres",
        "options": "-c client_connection_check_interval=1000",
    }


def test_the_last_socket_closing_as_the_watch_looks_does_not_abort_the_server() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LAST_SOCKET_CLOSES_AS_A_LOOK_STARTS],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "backend.settings",
            "READER_PARAMS": json.dumps(_params()),
            "PYTHONFAULTHANDLER": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    # The look was cancelled (not waited out), then the connection closed.
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "look_cancelled": True,
        "connection": "None",
    }
