"""Push fan-out: deliveries/s of the push worker to the fake FCM server ÷ the fake
server's own ceiling at the same concurrency.

TODO (lead, once notifications/ and the fake FCM v1 server are merged):
  1. start the fake FCM server (tests' fake, speaking the FCM v1 wire format) on
     a free loopback port as a subprocess, and measure its ceiling: a plain
     asyncio/httpx client posting `messages:send` requests with the worker's
     concurrency (WORKER_CONCURRENCY / the push HTTP pool size), requests/s;
  2. seed N devices (e.g. 2,000) in the bench database, point PUSH_BACKEND=fcm
     and the FCM base URL at the fake server, enqueue one event whose recipients
     own those devices (through the real action, so the jobs are deferred);
  3. start the worker (the Procfile's `worker` command, bench env), time from
     the first to the N-th request received by the fake server: deliveries/s;
  4. ratio = deliveries/s ÷ ceiling; target ≥ 0.5. Then drop the NotAvailable.
"""

from __future__ import annotations

from bench.harness import Context, NotAvailable, Result


def run(ctx: Context) -> list[Result]:
    raise NotAvailable(
        "not written yet: needs the worker run against the fake FCM server "
        "(notifications.fake_fcm) with google-auth redirected as in the tests"
    )
