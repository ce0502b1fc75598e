"""Push under faults: with 5 % of FCM answers 429/503, FCM requests ÷ unique
deliveries (≤ 1.1), and zero duplicate deliveries.

Push fan-out's setup (bench/push.py: the fake FCM server as a process, an
organisation's members owning N devices, the agency's real action deferring the
fan-out, the Procfile's worker), with the fake server started with
`--faults 0.05 --seed 8`: 5 % of the sends, drawn by a generator seeded with 8,
are answered 429 QUOTA_EXCEEDED (Retry-After: 1) or 503 UNAVAILABLE. The retry
waits are shortened so the run takes seconds (PUSH_RETRY_BASE_SECONDS=1,
PUSH_QUOTA_MIN_WAIT_SECONDS=1; production: 30 s and 60 s): how long the worker
waits changes when it sends again, not how many requests it makes. Once every
delivery is final and no send job is left, the fake server's log gives the
requests received and the (device token, notification id) pairs accepted; a pair
accepted twice is a duplicate. Rows: requests ÷ unique deliveries (≤ 1.1), and
the number of duplicates (≤ 0).
"""

from __future__ import annotations

import collections

from bench.harness import Context, Result
from bench.push import FakeFcm, delivered_pairs, run_worker

PATH = "push under faults"
FAULTS = 0.05
SEED = 8
FAST_RETRIES = {"PUSH_RETRY_BASE_SECONDS": "1", "PUSH_QUOTA_MIN_WAIT_SECONDS": "1"}


def run(ctx: Context) -> list[Result]:
    devices = 1000 if ctx.quick else 2000
    fake = FakeFcm("fake-fcm-faults", faults=FAULTS, seed=SEED)
    try:
        fake.start(ctx.env)
        run = run_worker(ctx, fake, devices, "faults", extra_env=FAST_RETRIES)
    finally:
        fake.stop()
    pairs = delivered_pairs(run.attempts)
    unique = len(set(pairs))
    duplicates = len(pairs) - unique
    requests = len(run.attempts)
    outcomes = collections.Counter(a["outcome"] for a in run.attempts)
    sends_per_pair = collections.Counter(
        collections.Counter(
            (a["token"], a["message"]["data"]["notification_id"]) for a in run.attempts
        ).values()
    )
    figures = {
        "devices": run.audience.devices,
        "fault_share": FAULTS,
        "seed": SEED,
        "requests": requests,
        "outcomes": dict(outcomes),
        "unique_deliveries": unique,
        "duplicates": duplicates,
        "requests_per_push": {str(k): v for k, v in sorted(sends_per_pair.items())},
        "delivery_states": run.states,
        "worker_start_to_drained_s": round(run.drain_seconds, 3),
        "retry_settings": FAST_RETRIES,
    }
    notes = []
    if unique < run.audience.devices:
        notes.append(f"{run.audience.devices - unique} devices got no push: {run.states}")
    measured_by = "fake FCM server's request log (python -m fakes.fcm --faults)"
    return [
        Result(
            path=PATH,
            ratio_name="FCM requests ÷ unique deliveries (5 % 429/503)",
            target="<= 1.1",
            ratio=requests / unique if unique else None,
            figures=figures,
            measured_by=measured_by,
            notes=notes,
        ),
        Result(
            path=PATH,
            ratio_name="duplicate deliveries (a device and message accepted twice)",
            target="<= 0",
            ratio=float(duplicates),
            figures={"duplicates": duplicates, "unique_deliveries": unique},
            measured_by=measured_by,
        ),
    ]
