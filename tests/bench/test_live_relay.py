"""The live update row's bare relay (bench/live_relay.py) and its proposed row.

The relay runs in this process on the test database and Redis, driven through
its ASGI interface; the hints are the real ones (`dossiers.events.publish_hint`
through the project's channel layer), on the channel the benchmark subscribes it to.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from bench.benchmarks.live_update import RATIO_RELAY, relay_channel, relay_row
from bench.live_relay import make_relay
from dossiers import lifecycle
from dossiers.events import publish_hint
from dossiers.models import Dossier, DossierEvent
from tests.conftest import make_user
from tests.factories import make_dossier


def _database_params() -> dict[str, Any]:
    params = connection.get_connection_params()
    for sync_only in ("cursor_factory", "context"):
        params.pop(sync_only, None)
    return params


async def _relay_frames(channel: str, hints: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Connect to the relay on `channel`, publish each (event id, dossier id) hint the
    way an action's commit does, and return every frame it sent, in order, once it
    sent as many frames as hints or the connection ended."""
    app = make_relay(_database_params(), settings.REDIS_URL)
    inbound: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbound: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "websocket", "path": "/", "query_string": f"channel={channel}".encode()}
    serving = asyncio.create_task(app(scope, inbound.get, outbound.put))
    await inbound.put({"type": "websocket.connect"})
    assert (await asyncio.wait_for(outbound.get(), 10))["type"] == "websocket.accept"
    for event_id, dossier_id in hints:
        await asyncio.to_thread(publish_hint, event_id, dossier_id, [])
    # The hints that the relay relays: at most one frame per hint.
    frames: list[dict[str, Any]] = []
    relayed = [dossier for _, dossier in hints if channel == relay_channel(dossier)]
    while len(frames) < len(relayed):
        frames.append(await asyncio.wait_for(outbound.get(), 10))
    await inbound.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(serving, 10)
    while not outbound.empty():
        frames.append(outbound.get_nowait())
    return frames


@pytest.mark.django_db(transaction=True)
def test_the_relay_sends_the_row_of_the_hinted_event_and_nothing_from_other_groups() -> None:
    citizen = make_user()
    dossier = make_dossier(citizen, status=Dossier.Status.NEW)
    other = make_dossier(citizen, status=Dossier.Status.NEW)
    actor = lifecycle.Actor.agency_system("bench")
    lifecycle.accept(dossier.pk, actor)
    lifecycle.request_payment(dossier.pk, actor, amount=50_000)
    lifecycle.accept(other.pk, actor)
    accepted, payment_requested = DossierEvent.objects.filter(dossier=dossier).order_by("id")
    other_event = DossierEvent.objects.get(dossier=other)

    frames = asyncio.run(
        _relay_frames(
            relay_channel(str(dossier.pk)),
            [
                # Another dossier's group: not the relay's channel.
                (other_event.pk, str(other.pk)),
                # The earlier of the dossier's two events: the row read is the
                # hinted one, not the latest.
                (accepted.pk, str(dossier.pk)),
            ],
        )
    )

    assert [frame["type"] for frame in frames] == ["websocket.send"]
    sent = json.loads(frames[0]["text"])
    assert sent == {
        "type": "event",
        "id": accepted.pk,
        "event_type": accepted.type,
        "status_before": Dossier.Status.NEW,
        "status_after": Dossier.Status.ACCEPTED,
        "time": accepted.created_at.isoformat(),
        "data": accepted.data,
        "dossier_id": str(dossier.pk),
    }
    assert payment_requested.pk != accepted.pk


def test_the_proposed_row_is_the_projects_p50_over_the_relays_with_both_p99s() -> None:
    busy = [0.001 * n for n in range(1, 101)]  # p50 50 ms, p99 99 ms
    relay_busy = [0.0005 * n for n in range(1, 101)]  # p50 25 ms, p99 49.5 ms
    relay_quiet = [0.0002 * n for n in range(1, 101)]  # p50 10 ms, p99 19.8 ms
    figures: dict[str, Any] = {"samples": 100}

    row = relay_row(busy, relay_busy, relay_quiet, (0.0003, 0.0004), figures)

    assert (row.path, row.ratio_name, row.target) == ("live update", RATIO_RELAY, "<= 2.0")
    assert row.ratio == pytest.approx(2.0)
    assert row.met is True
    assert row.figures is figures
    assert figures == {
        "samples": 100,
        "relay_quiet_commit_to_frame_p50_ms": 10.0,
        "relay_quiet_commit_to_frame_p99_ms": 19.8,
        "relay_writer_commit_to_frame_p50_ms": 25.0,
        "relay_writer_commit_to_frame_p99_ms": 49.5,
        "relay_writer_commit_to_frame_max_ms": 50.0,
        "relay_quiet_cpu_ms_per_frame": 0.3,
        "relay_writer_cpu_ms_per_frame": 0.4,
        "writer_p50_over_relay_p50": 2.0,
        "writer_p99_over_relay_p99": 2.0,
    }
