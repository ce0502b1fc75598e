"""Client CPU per push of the FCM gateway, against the fake FCM server in its own process.

    python -m bench.fcm_client_cpu [--pushes 4000] [--batch 50] [--rounds 3]

Starts `python -m fakes.fcm` on a free loopback port, points the settings at it
(`fakes.fcm.backend_env`), warms up (token, connections), then sends `--pushes`
pushes in calls of `--batch` (the slice the delivery code hands the gateway:
FCM_CONCURRENCY) and reports this process's CPU time (every thread: the caller,
the sender's loop) per push, for:

- `gateway`: `FcmGateway.send` (builds, validates and encodes with firebase-admin,
  sends with the asynchronous sender): what a send job pays;
- `transport`: the sender alone, on messages encoded beforehand;
- `send_each`: firebase-admin's own `messaging.send_each` (a thread per message over
  requests), the transport the sender replaced, for comparison.

The fake server's CPU is its own process's and is not counted. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def _push(index: int) -> Any:
    from notifications.payload import Push

    return Push(
        token=f"bench-token-{index:06d}-" + "x" * 140,
        title="Hồ sơ đã được tiếp nhận",
        body=f"Hồ sơ 000.00.00.H00-261206-{index:04d} đã được tiếp nhận. Ngày hẹn trả: 12/12/2026.",
        data={
            "type": "dossier.accepted",
            "category": "status_changes",
            "urgent": "false",
            "event_id": str(index),
            "dossier_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "dossier_code": f"000.00.00.H00-261206-{index:04d}",
            "notification_id": str(index),
        },
        collapse_id="dossier-0f8fad5bd9cb469fa16570867728950e",
        urgent=False,
        badge=1,
        channel_id="dossier_updates",
    )


def _measure(send: Callable[[list[Any]], int], items: list[Any], batch: int) -> dict[str, float]:
    started_cpu, started = time.process_time(), time.perf_counter()
    accepted = 0
    for start in range(0, len(items), batch):
        accepted += send(items[start : start + batch])
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    if accepted != len(items):
        raise RuntimeError(f"{accepted} of {len(items)} pushes accepted")
    return {"cpu_ms_per_push": 1000 * cpu / len(items), "pushes_per_s": len(items) / wall}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-send-each", action="store_true")
    args = parser.parse_args(argv)

    from bench.harness import bench_env
    from bench.push import FakeFcm

    fake = FakeFcm("fcm-client-cpu").start(bench_env())
    try:
        os.environ.update(fake.backend_env())
        os.environ.update({"FCM_CONCURRENCY": str(args.batch), "LOG_LEVEL": "ERROR"})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
        import django

        django.setup()
        result = _run(args, fake)
    finally:
        fake.stop()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _run(args: argparse.Namespace, fake: Any) -> dict[str, Any]:
    from firebase_admin import messaging

    from notifications.fcm import FcmGateway, fcm_url
    from notifications.payload import build_message, encode

    gateway = FcmGateway()
    pushes = [_push(n) for n in range(args.pushes)]
    encoded = [encode(build_message(push)) for push in pushes]
    messages = [build_message(push) for push in pushes]

    def via_gateway(batch: list[Any]) -> int:
        return sum(result.ok for result in gateway.send(batch))

    def via_transport(batch: list[Any]) -> int:
        return sum(r.success for r in gateway.sender.send_each(batch, concurrency=len(batch)))

    service = messaging._get_messaging_service(gateway.app)
    service._fcm_url = fcm_url(gateway.app)

    def via_send_each(batch: list[Any]) -> int:
        return int(messaging.send_each(batch, app=gateway.app).success_count)

    variants: dict[str, tuple[Callable[[list[Any]], int], list[Any]]] = {
        "gateway": (via_gateway, pushes),
        "transport": (via_transport, encoded),
    }
    if not args.skip_send_each:
        variants["send_each"] = (via_send_each, messages)
    for send, items in variants.values():  # warm-up: token, connections, imports
        _measure(send, items[: args.batch * 4], args.batch)
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (send, items) in variants.items():
            rounds[name].append(_measure(send, items, args.batch))
    stats = fake.stats()
    return {
        "pushes_per_round": args.pushes,
        "batch": args.batch,
        "rounds": args.rounds,
        "results": {
            name: {
                "cpu_ms_per_push_median": round(
                    statistics.median(r["cpu_ms_per_push"] for r in runs), 3
                ),
                "cpu_ms_per_push": [round(r["cpu_ms_per_push"], 3) for r in runs],
                "pushes_per_s": [round(r["pushes_per_s"]) for r in runs],
            }
            for name, runs in rounds.items()
        },
        "sender_token_fetches": gateway.sender.token.fetches,
        "fake_token_requests": stats["token_requests"],
        "fake_requests": stats["requests"],
    }


if __name__ == "__main__":
    main()
