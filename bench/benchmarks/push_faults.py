"""Push under faults: with 5 % of FCM answers 429/503, FCM requests ÷ unique
deliveries (≤ 1.1), and zero duplicate deliveries.

TODO (lead, once notifications/ and the fake FCM v1 server are merged): reuse
push_fanout's setup with the fake server told to answer 5 % of requests with
429 (Retry-After) or 503, chosen at random with a fixed seed; after the worker
has drained the queue, read the fake server's log: requests received, unique
(device, message) pairs delivered, and duplicates (a pair delivered twice).
Ratio = requests ÷ unique deliveries; report duplicates as a figure and treat
any duplicate as a miss. Then drop the NotAvailable.
"""

from __future__ import annotations

from bench.harness import Context, NotAvailable, Result


def run(ctx: Context) -> list[Result]:
    raise NotAvailable(
        "not written yet: the fan-out benchmark with 5 % 429/503 answers from the fake FCM server"
    )
