"""The push worker's CPU per delivery, in one process, against the fake FCM server.

    python -m bench.push_worker_cpu [--devices 1000] [--rounds 3] [--jobs N]

The bench database (BENCH_DATABASE_URL, dropped and migrated as `bench.run` does)
gets, each round, a push audience (`bench.seed push`'s code: an organisation whose
members watch its dossiers, two devices each) and its dossier accepted with the
real action. Then the worker's own code runs as the worker runs it, timed with this
process's CPU clock (every thread):
- the event's fan-out job (`notify_event`): inbox entries, deliveries, send jobs;
- the send jobs it queued (`send_pushes`), `--jobs` at a time (WORKER_CONCURRENCY,
  as the worker runs them: one thread each), through the real FCM gateway
  (firebase-admin's encoder, the asynchronous sender) to `python -m fakes.fcm` in a
  process of its own.
Left out, against the worker's figure in `bench.run`'s push fan-out row:
procrastinate's own work (fetching and finishing the jobs) and the worker's periodic
checks. A first, smaller round warms up (imports, token, connections). Prints JSON:
CPU ms per delivery of the fan-out, of the send jobs (and of them the sender's
event loop thread) and in all, per round and their medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.harness import bench_env
from bench.push import FakeFcm
from fakes.harness import recreate_database


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--jobs", type=int, default=0, help="send jobs at once (WORKER_CONCURRENCY)"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="push-worker-cpu-"))
    fake = FakeFcm("push-worker-cpu").start(bench_env())
    try:
        env = bench_env(LOG_LEVEL="ERROR", OUTBOX_DIR=str(workdir / "outbox"))
        # As the push benchmarks run the worker: quiet hours off, so a push goes now.
        env.update({"NOTIFICATIONS_QUIET_START": "00:00", "NOTIFICATIONS_QUIET_END": "00:00"})
        env.update(fake.backend_env())
        os.environ.update(env)
        os.environ.pop("TEST_DATABASE_NAME", None)
        recreate_database(env["DATABASE_URL"])
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", "--noinput", verbosity=0)
        result = _run(args)
    finally:
        fake.stop()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _thread_cpu(native_id: int | None) -> float:
    """CPU seconds of one thread of this process (Linux /proc)."""
    if native_id is None:
        return 0.0
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _round(devices: int, pool: ThreadPoolExecutor) -> dict[str, float]:
    from django.db import connection

    from bench.seed import accept_dossier, seed_push_audience
    from notifications.actions import notify_event
    from notifications.delivery import send_pushes
    from notifications.fcm_sender import sender_loop
    from notifications.models import Delivery

    audience = seed_push_audience(devices, f"cpu-{uuid.uuid4().hex[:8]}", accept=False)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs")  # the seed's own jobs
    event_id = accept_dossier(audience["dossier_id"])["event_id"]
    started = time.process_time()
    notify_event(event_id)
    fanned_out = time.process_time()
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH taken AS (DELETE FROM procrastinate_jobs "
            "WHERE task_name = 'notifications.send_pushes' RETURNING id, args) "
            "SELECT args FROM taken ORDER BY id"
        )
        jobs = [
            (json.loads(args) if isinstance(args, str) else args)["delivery_ids"]
            for (args,) in cursor.fetchall()
        ]
    loop_thread = sender_loop().thread.native_id
    loop_before = _thread_cpu(loop_thread)
    sending = time.process_time()
    wall = time.perf_counter()
    sent = sum(pool.map(send_pushes, jobs))
    done = time.process_time()
    wall = time.perf_counter() - wall
    loop_cpu = _thread_cpu(loop_thread) - loop_before
    delivered = Delivery.objects.filter(
        notification__event_id=event_id, state=Delivery.State.DELIVERED
    ).count()
    count = audience["devices"]
    if sent != count or delivered != count:
        raise RuntimeError(f"{sent} sent, {delivered} delivered of {count}")
    return {
        "fan_out": 1000 * (fanned_out - started) / count,
        "send_jobs": 1000 * (done - sending) / count,
        "of_which_sender_loop": 1000 * loop_cpu / count,
        "total": 1000 * ((fanned_out - started) + (done - sending)) / count,
        "send_jobs_count": len(jobs),
        "send_wall_seconds": wall,
    }


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from django.conf import settings

    from backend.gc_freeze import freeze_startup_objects
    from notifications.fcm import warm_up

    jobs = args.jobs or settings.WORKER_CONCURRENCY
    # As `manage.py worker` starts: the FCM client built, then what is loaded frozen.
    warm_up()
    freeze_startup_objects()
    with ThreadPoolExecutor(jobs, thread_name_prefix="send-job") as pool:
        _round(min(args.devices, 200), pool)
        rounds = [_round(args.devices, pool) for _ in range(args.rounds)]
    keys = ("fan_out", "send_jobs", "of_which_sender_loop", "total")
    return {
        "devices": args.devices,
        "jobs_at_once": jobs,
        "load_average": os.getloadavg(),
        "cpu_ms_per_delivery_median": {
            key: round(statistics.median(r[key] for r in rounds), 3) for key in keys
        },
        "rounds": [{key: round(value, 3) for key, value in r.items()} for r in rounds],
    }


if __name__ == "__main__":
    main()
