"""The live update row's concurrent writer: `python -m bench.concurrent_writer URL RATE HOLD`.

RATE write transactions a second on the database at URL, each holding its
transaction (and its transaction id) open HOLD seconds: one simple-query round
trip `BEGIN; INSERT ...; SELECT pg_sleep(HOLD); COMMIT`, in a table of its own.
A process of its own, so that neither the GIL nor the scheduler of the
benchmark's process slows it down. Runs until SIGTERM, then prints one JSON
line {"committed", "seconds"}.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from types import FrameType

import psycopg


def main() -> None:
    url, rate, hold = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    committed = 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_concurrent_writer "
            "(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
        )
        statement = (
            "BEGIN; INSERT INTO bench_concurrent_writer DEFAULT VALUES; "
            f"SELECT pg_sleep({hold:.4f}); COMMIT"
        )
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        started = next_start = time.monotonic()
        while not stopping.is_set():
            conn.execute(statement.encode())
            committed += 1
            next_start += 1 / rate
            stopping.wait(max(0.0, next_start - time.monotonic()))
    seconds = time.monotonic() - started
    sys.stdout.write(json.dumps({"committed": committed, "seconds": seconds}) + "\n")


if __name__ == "__main__":
    main()
