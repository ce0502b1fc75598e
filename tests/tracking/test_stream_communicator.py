"""The WebSocket stream through channels' WebsocketCommunicator (real Redis layer)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import psycopg
import pytest
from asgiref.sync import sync_to_async
from channels.db import aclose_old_connections, database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing.websocket import WebsocketCommunicator
from django.db import connection, transaction
from django.utils import timezone, translation
from redis.asyncio.client import PubSub

from auth.actions.sessions import revoke_all_sessions, revoke_session
from auth.models import DeviceSession, Membership
from backend.asgi import application
from backend.channel_layer import RedisPubSubChannelLayer
from backend.redis import get_redis
from dossiers.models import Dossier
from tests.conftest import make_user, sign_in
from tests.factories import make_dossier, make_organisation
from tests.tracking.conftest import Citizen, OpenTransaction, OtherWriter, add_event
from tracking import reader, socket_cap, stream, tickets
from tracking.stream import iso_time
from tracking.texts import event_text

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async
WAIT = 60  # seconds a frame may take on a busy machine (other suites share it)
QUIET = 0.3

Opener = Callable[..., Awaitable[tuple[WebsocketCommunicator, bool, Any]]]


@pytest.fixture
async def open_socket(realtime_settings: Any) -> AsyncIterator[Opener]:
    opened: list[WebsocketCommunicator] = []

    async def _open(
        ticket: str, *, origin: str | None = None, **params: Any
    ) -> tuple[WebsocketCommunicator, bool, Any]:
        query = urlencode({"ticket": ticket, **{key: str(value) for key, value in params.items()}})
        headers = [(b"origin", origin.encode())] if origin else []
        socket = WebsocketCommunicator(application, f"/ws/v1/events?{query}", headers=headers)
        opened.append(socket)
        connected, detail = await socket.connect(timeout=WAIT)
        return socket, connected, detail

    yield _open
    for socket in opened:
        with contextlib.suppress(Exception):
            await socket.disconnect(timeout=WAIT)


async def new_citizen(**fields: Any) -> Citizen:
    return await db(Citizen)(**fields)


async def event_ids(socket: WebsocketCommunicator, count: int) -> list[int]:
    """The ids of the next `count` event frames (heartbeats may come in between)."""
    ids: list[int] = []
    while len(ids) < count:
        frame = await socket.receive_json_from(timeout=WAIT)
        if frame["type"] == "heartbeat":
            continue
        assert frame["type"] == "event", frame
        ids.append(frame["id"])
    return ids


async def next_event(socket: WebsocketCommunicator) -> dict[str, Any]:
    while True:
        frame = await socket.receive_json_from(timeout=WAIT)
        if frame["type"] != "heartbeat":
            return dict(frame)


async def quiet(socket: WebsocketCommunicator) -> bool:
    """No frame but heartbeats for a moment (the negative check of a stream)."""
    deadline = asyncio.get_running_loop().time() + QUIET
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        if await socket.receive_nothing(timeout=left):
            return True
        frame = await socket.receive_json_from(timeout=WAIT)
        assert frame["type"] == "heartbeat", frame
    return True


async def closed_with(socket: WebsocketCommunicator) -> int:
    while True:
        output = await socket.receive_output(timeout=WAIT)
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))


# --- frames ---------------------------------------------------------------------


async def test_event_frame_has_the_documented_shape_in_the_users_language(open_socket):
    alice = await new_citizen(language="en")
    socket, connected, _ = await open_socket(alice.ticket())
    assert connected

    event = await db(add_event)(
        alice.dossier, "dossier.accepted", status_after=2, data={"receipt_number": "01/2026"}
    )

    assert await next_event(socket) == {
        "type": "event",
        "id": event.id,
        "event_type": "dossier.accepted",
        "dossier_id": str(alice.dossier.pk),
        "dossier_code": alice.dossier.code,
        "status": 2,
        "status_before": 1,
        "time": iso_time(event.created_at),
        "text": "The agency accepted the dossier and issued a receipt.",
        "data": {"receipt_number": "01/2026"},
    }


async def test_event_text_is_vietnamese_for_a_vietnamese_user(open_socket):
    hoa = await new_citizen(language="vi")
    socket, _, _ = await open_socket(hoa.ticket())

    await db(add_event)(hoa.dossier, "dossier.accepted", status_after=2)

    frame = await next_event(socket)
    assert frame["text"] == "Cơ quan đã tiếp nhận hồ sơ và cấp giấy tiếp nhận."


async def test_heartbeat_frame_arrives_at_the_configured_interval(open_socket, settings):
    settings.WS_HEARTBEAT_SECONDS = 0.1
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    frame = await socket.receive_json_from(timeout=WAIT)

    assert frame["type"] == "heartbeat"
    assert set(frame) == {"type", "time"}
    assert dt.datetime.fromisoformat(frame["time"]).tzinfo is not None


async def test_ping_frame_is_answered_with_a_heartbeat(open_socket):
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    await socket.send_json_to({"type": "ping"})

    assert (await socket.receive_json_from(timeout=WAIT))["type"] == "heartbeat"


async def test_unknown_inbound_frame_gets_an_error_frame_and_the_socket_stays(open_socket):
    alice = await new_citizen(language="en")
    socket, _, _ = await open_socket(alice.ticket())

    await socket.send_to(text_data="hello")

    assert await socket.receive_json_from(timeout=WAIT) == {
        "type": "error",
        "code": "unknown_frame",
        "message": 'The server only understands {"type": "ping"}.',
    }
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=WAIT))["type"] == "heartbeat"


@pytest.mark.parametrize(
    "text",
    [
        "[" * 2000 + "]" * 2000,  # deeper than Python's recursion limit
        '{"type": "ping", "n": ' + "9" * 5000 + "}",  # more digits than int() reads
    ],
    ids=["nested", "digits"],
)
async def test_a_frame_json_cannot_read_is_an_unknown_frame_not_a_crash(open_socket, text):
    alice = await new_citizen(language="en")
    socket, _, _ = await open_socket(alice.ticket())

    await socket.send_to(text_data=text)

    assert (await socket.receive_json_from(timeout=WAIT))["code"] == "unknown_frame"
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=WAIT))["type"] == "heartbeat"


async def test_a_failing_frame_closes_its_socket_with_1011_and_cleans_up(open_socket):
    from tracking import consumers, socket_cap

    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    with (
        mock.patch.object(
            consumers.EventStreamConsumer, "_heartbeat", side_effect=RuntimeError("a bug")
        ),
        mock.patch.object(
            socket_cap, "unregister_socket", wraps=socket_cap.unregister_socket
        ) as gone,
    ):
        await socket.send_json_to({"type": "ping"})
        assert await closed_with(socket) == 1011
        await socket.disconnect(timeout=WAIT)  # the client goes: the consumer's cleanup runs

    [call] = gone.call_args_list
    assert call.args[0] == alice.user.pk


# --- tickets and origin ------------------------------------------------------------


async def test_ticket_works_once(open_socket):
    alice = await new_citizen()
    ticket = alice.ticket()
    _, first, _ = await open_socket(ticket)

    second, connected, _ = await open_socket(ticket)

    assert first is True
    assert connected is True  # accepted only to say why it closes
    assert await second.receive_json_from(timeout=WAIT) == {
        "type": "error",
        "code": "invalid_ticket",
        # Before the ticket is known, so is the user's language: Vietnamese.
        "message": "Vé kết nối không hợp lệ, đã dùng hoặc đã hết hạn. Hãy lấy vé mới.",
    }
    assert await closed_with(second) == 4401


async def test_expired_ticket_is_refused(open_socket, monkeypatch):
    alice = await new_citizen()
    ticket = alice.ticket()
    issued_at = tickets.now()
    monkeypatch.setattr(tickets, "now", lambda: issued_at + tickets.ticket_ttl())

    socket, _, _ = await open_socket(ticket)

    assert (await socket.receive_json_from(timeout=WAIT))["code"] == "invalid_ticket"
    assert await closed_with(socket) == 4401


async def test_ticket_just_before_expiry_is_accepted(open_socket, monkeypatch):
    alice = await new_citizen()
    ticket = alice.ticket()
    issued_at = tickets.now()
    monkeypatch.setattr(tickets, "now", lambda: issued_at + tickets.ticket_ttl() - 1)

    socket, connected, _ = await open_socket(ticket)
    await socket.send_json_to({"type": "ping"})

    assert connected
    assert (await socket.receive_json_from(timeout=WAIT))["type"] == "heartbeat"


async def test_missing_ticket_is_refused(open_socket):
    socket, _, _ = await open_socket("")

    assert (await socket.receive_json_from(timeout=WAIT))["code"] == "invalid_ticket"
    assert await closed_with(socket) == 4401


async def test_ticket_of_a_revoked_session_is_refused(open_socket):
    alice = await new_citizen()
    ticket = alice.ticket()
    await db(revoke_session)(alice.session, reason="logout")

    socket, _, _ = await open_socket(ticket)

    assert (await socket.receive_json_from(timeout=WAIT))["code"] == "invalid_ticket"
    assert await closed_with(socket) == 4401


def _signed_in_ago(session: DeviceSession, age: dt.timedelta) -> None:
    DeviceSession.objects.filter(pk=session.pk).update(created_at=timezone.now() - age)


async def test_ticket_of_a_session_past_its_max_age_is_refused(open_socket, settings):
    alice = await new_citizen()
    ticket = alice.ticket()
    await db(_signed_in_ago)(alice.session, dt.timedelta(days=settings.SESSION_MAX_AGE_DAYS))

    socket, _, _ = await open_socket(ticket)

    assert (await socket.receive_json_from(timeout=WAIT))["code"] == "invalid_ticket"
    assert await closed_with(socket) == 4401
    # It ended, it was not revoked.
    assert (await db(DeviceSession.objects.get)(pk=alice.session.pk)).revoked_at is None


async def test_ticket_of_a_session_just_within_its_max_age_is_accepted(open_socket, settings):
    alice = await new_citizen()
    ticket = alice.ticket()
    age = dt.timedelta(days=settings.SESSION_MAX_AGE_DAYS) - dt.timedelta(minutes=1)
    await db(_signed_in_ago)(alice.session, age)

    socket, connected, _ = await open_socket(ticket)
    await socket.send_json_to({"type": "ping"})

    assert connected
    assert (await socket.receive_json_from(timeout=WAIT))["type"] == "heartbeat"


async def test_an_open_socket_closes_at_the_heartbeat_after_its_sessions_max_age(
    open_socket, settings
):
    settings.WS_HEARTBEAT_SECONDS = 0.2
    alice = await new_citizen()
    socket, connected, _ = await open_socket(alice.ticket())
    assert connected

    await db(_signed_in_ago)(alice.session, dt.timedelta(days=settings.SESSION_MAX_AGE_DAYS))

    assert await closed_with(socket) == 4003


async def test_browser_origin_on_the_allow_list_is_accepted(open_socket):
    alice = await new_citizen()
    _, connected, _ = await open_socket(alice.ticket(), origin="https://app.dichvucong.example")
    assert connected is True


async def test_foreign_origin_is_refused_at_the_handshake(open_socket):
    alice = await new_citizen()
    ticket = alice.ticket()

    _, connected, _ = await open_socket(ticket, origin="https://evil.example")

    assert connected is False
    # The ticket was not even spent: the refusal came first.
    assert await db(tickets.redeem_ticket)(ticket) is not None


async def test_native_app_without_origin_is_accepted_with_a_ticket(open_socket):
    alice = await new_citizen()
    _, connected, _ = await open_socket(alice.ticket())
    assert connected is True


# --- who hears what -----------------------------------------------------------------


def _organisation_world() -> dict[str, Any]:
    alice = Citizen()
    bob = Citizen()
    carol = make_user()
    company = make_organisation(carol)
    Membership.objects.create(organisation=company, user=alice.user, watches=True)
    other_company = make_organisation(make_user())
    return {
        "alice": alice,
        "bob": bob,
        "company_dossier": make_dossier(carol, organisation=company, status=Dossier.Status.NEW),
        "other_company_dossier": make_dossier(
            other_company.memberships.get().user, organisation=other_company, status=1
        ),
    }


async def test_socket_gets_own_and_own_organisation_events_and_no_others(open_socket):
    world = await db(_organisation_world)()
    alice, bob = world["alice"], world["bob"]
    alice_socket, _, _ = await open_socket(alice.ticket())
    bob_socket, _, _ = await open_socket(bob.ticket())

    await db(add_event)(bob.dossier)
    await db(add_event)(world["other_company_dossier"])
    company_event = await db(add_event)(world["company_dossier"])
    own_event = await db(add_event)(alice.dossier)

    assert await event_ids(alice_socket, 2) == [company_event.id, own_event.id]
    assert await quiet(alice_socket)
    bob_frames = [await next_event(bob_socket)]
    assert [frame["dossier_id"] for frame in bob_frames] == [str(bob.dossier.pk)]
    assert await quiet(bob_socket)


async def test_replay_never_includes_other_users_events(open_socket):
    world = await db(_organisation_world)()
    alice, bob = world["alice"], world["bob"]
    first = await db(add_event)(alice.dossier)
    await db(add_event)(bob.dossier)
    await db(add_event)(world["other_company_dossier"])
    company_event = await db(add_event)(world["company_dossier"])

    socket, _, _ = await open_socket(alice.ticket(), last_event_id=first.id)

    assert await event_ids(socket, 1) == [company_event.id]
    assert await quiet(socket)


async def test_ticket_narrowed_to_a_dossier_only_carries_that_dossier(open_socket):
    alice = await new_citizen()
    other = await db(make_dossier)(alice.user, status=Dossier.Status.NEW)
    socket, _, _ = await open_socket(alice.ticket(alice.dossier))

    await db(add_event)(other)
    wanted = await db(add_event)(alice.dossier)

    assert await event_ids(socket, 1) == [wanted.id]
    assert await quiet(socket)


async def test_narrowing_to_someone_elses_dossier_closes_with_4404(open_socket):
    alice = await new_citizen()
    bob = await new_citizen()

    socket, _, _ = await open_socket(alice.ticket(), dossier_id=bob.dossier.pk)

    assert (await socket.receive_json_from(timeout=WAIT))["code"] == "dossier_not_found"
    assert await closed_with(socket) == 4404


async def test_a_narrowed_ticket_opened_on_another_of_ones_dossiers_closes_with_4404(
    open_socket,
):
    """realtime.md: a ticket for dossier A opens a socket on A only, even when B is
    the user's own."""
    alice = await new_citizen()
    other = await db(make_dossier)(alice.user, status=Dossier.Status.NEW)

    socket, _, _ = await open_socket(alice.ticket(alice.dossier), dossier_id=other.pk)

    assert (await socket.receive_json_from(timeout=WAIT))["code"] == "dossier_not_found"
    assert await closed_with(socket) == 4404


# --- resume -----------------------------------------------------------------------------


async def test_resume_replays_every_missed_event_in_order_then_streams_live(open_socket):
    alice = await new_citizen()
    second_dossier = await db(make_dossier)(alice.user, status=Dossier.Status.NEW)
    socket, _, _ = await open_socket(alice.ticket())
    seen = await db(add_event)(alice.dossier)
    assert await event_ids(socket, 1) == [seen.id]
    await socket.disconnect()

    missed = []
    for index in range(6):
        dossier = alice.dossier if index % 2 else second_dossier
        missed.append((await db(add_event)(dossier)).id)
    resumed, _, _ = await open_socket(alice.ticket(), last_event_id=seen.id)
    live = await db(add_event)(alice.dossier)

    assert await event_ids(resumed, 7) == [*missed, live.id]
    assert await quiet(resumed)


async def test_resume_from_the_latest_event_sends_nothing_old(open_socket):
    alice = await new_citizen()
    await db(add_event)(alice.dossier)
    latest = await db(add_event)(alice.dossier)

    socket, _, _ = await open_socket(alice.ticket(), last_event_id=latest.id)

    assert await quiet(socket)


async def test_without_last_event_id_the_stream_starts_with_new_events(open_socket):
    alice = await new_citizen()
    await db(add_event)(alice.dossier)
    socket, _, _ = await open_socket(alice.ticket())

    new = await db(add_event)(alice.dossier)

    assert await event_ids(socket, 1) == [new.id]


async def test_unknown_last_event_id_sends_resync_then_streams_live(open_socket):
    alice = await new_citizen(language="en")
    socket, _, _ = await open_socket(alice.ticket(), last_event_id=987654321)

    assert await socket.receive_json_from(timeout=WAIT) == {
        "type": "resync",
        "reason": "unknown_event",
        "message": "This position in the history is unknown. Reload the dossiers.",
    }
    live = await db(add_event)(alice.dossier)
    assert await event_ids(socket, 1) == [live.id]


async def test_last_event_id_of_another_users_event_is_unknown(open_socket):
    alice = await new_citizen()
    bob = await new_citizen()
    bobs = await db(add_event)(bob.dossier)
    await db(add_event)(bob.dossier)

    socket, _, _ = await open_socket(alice.ticket(), last_event_id=bobs.id)

    frame = await socket.receive_json_from(timeout=WAIT)
    assert (frame["type"], frame["reason"]) == ("resync", "unknown_event")
    assert await quiet(socket)


async def test_last_event_id_that_is_not_a_number_is_unknown(open_socket):
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket(), last_event_id="abc")
    assert (await socket.receive_json_from(timeout=WAIT))["reason"] == "unknown_event"


async def test_last_event_id_older_than_retention_sends_resync(open_socket, settings):
    settings.WS_RESUME_RETENTION_SECONDS = 7 * 24 * 3600
    alice = await new_citizen()
    # The log is append-only (a trigger refuses UPDATE): write the old event in the past.
    past = timezone.now() - dt.timedelta(days=7, seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=past):
        old = await db(add_event)(alice.dossier)
    await db(add_event)(alice.dossier)

    socket, _, _ = await open_socket(alice.ticket(), last_event_id=old.id)

    frame = await socket.receive_json_from(timeout=WAIT)
    assert (frame["type"], frame["reason"]) == ("resync", "expired")
    assert await quiet(socket)


async def test_last_event_id_just_inside_retention_resumes(open_socket, settings):
    settings.WS_RESUME_RETENTION_SECONDS = 7 * 24 * 3600
    alice = await new_citizen()
    past = timezone.now() - dt.timedelta(days=7) + dt.timedelta(minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=past):
        old = await db(add_event)(alice.dossier)
    after = await db(add_event)(alice.dossier)

    socket, _, _ = await open_socket(alice.ticket(), last_event_id=old.id)

    assert await event_ids(socket, 1) == [after.id]


# --- events that commit out of id order ------------------------------------------------


async def test_live_stream_holds_a_later_id_until_the_earlier_transaction_ends(open_socket):
    alice = await new_citizen()
    other = await db(make_dossier)(alice.user, status=Dossier.Status.NEW)
    socket, _, _ = await open_socket(alice.ticket())

    with OpenTransaction(alice.dossier) as first:
        later = await db(add_event)(other)  # committed, with the larger id
        assert await quiet(socket)
        earlier = await sync_to_async(first.commit, thread_sensitive=False)()

    assert earlier.id < later.id
    assert await event_ids(socket, 2) == [earlier.id, later.id]
    assert await quiet(socket)


async def test_resume_from_the_later_id_never_misses_the_earlier_event(open_socket):
    alice = await new_citizen()
    other = await db(make_dossier)(alice.user, status=Dossier.Status.NEW)

    with OpenTransaction(alice.dossier) as first:
        later = await db(add_event)(other)
        # The app learnt the later id while the earlier transaction was open
        # (from the timeline, say) and resumes from it.
        socket, _, _ = await open_socket(alice.ticket(), last_event_id=later.id)
        assert await quiet(socket)
        earlier = await sync_to_async(first.commit, thread_sensitive=False)()

    assert await event_ids(socket, 1) == [earlier.id]
    assert await quiet(socket)


async def test_resume_after_both_commits_replays_in_log_order(open_socket):
    alice = await new_citizen()
    other = await db(make_dossier)(alice.user, status=Dossier.Status.NEW)
    start = await db(add_event)(alice.dossier)
    with OpenTransaction(alice.dossier) as first:
        later = await db(add_event)(other)
        earlier = await sync_to_async(first.commit, thread_sensitive=False)()

    from_start, _, _ = await open_socket(alice.ticket(), last_event_id=start.id)
    from_earlier, _, _ = await open_socket(alice.ticket(), last_event_id=earlier.id)
    from_later, _, _ = await open_socket(alice.ticket(), last_event_id=later.id)

    assert await event_ids(from_start, 2) == [earlier.id, later.id]
    assert await event_ids(from_earlier, 1) == [later.id]
    assert await quiet(from_later)


# --- held events: the watch ------------------------------------------------------------


def _watch_state() -> Any:
    """The reader's state of this event loop (the communicator runs the app in it)."""
    return reader._loops[asyncio.get_running_loop()]


async def _until(condition: Callable[[], bool]) -> None:
    """Wait, without blocking the app running in this loop, until `condition()` holds."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


async def test_another_writers_open_transaction_holds_no_frame_back(open_socket, settings):
    # Before, the stream waited for every older transaction of the cluster (a report,
    # a batch, another database): an event written meanwhile waited for it to end.
    settings.WS_HEARTBEAT_SECONDS = 3600
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    with OtherWriter() as other:
        event = await db(add_event)(alice.dossier)  # after the writer's transaction began
        assert await event_ids(socket, 1) == [event.id]
        assert other.thread.is_alive()  # still open when the frame came
        await sync_to_async(other.commit, thread_sensitive=False)()

    assert await quiet(socket)


@pytest.mark.parametrize("ending", ["commit", "rollback"])
async def test_event_held_behind_another_dossiers_open_event_arrives_once_that_ends(
    open_socket, settings, ending
):
    # No heartbeat and no hint can deliver it: the other event is bob's (alice's
    # socket gets no hint of it), so the watch must see the gap fill (commit) or,
    # for an id that never commits (rollback), the probe see its writer end.
    settings.WS_HEARTBEAT_SECONDS = 3600
    settings.WS_RECHECK_FIRST_SECONDS = 0.001
    settings.WS_RECHECK_SECONDS = 0.05
    alice, bob = await new_citizen(), await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    with OpenTransaction(bob.dossier) as other:
        event = await db(add_event)(alice.dossier)  # a later id, committed first
        assert other.event is not None
        assert event.id > other.event.id
        assert await quiet(socket)
        await _until(lambda: _watch_state().looks >= 2)  # the watch looks, finds it held
        await sync_to_async(getattr(other, ending), thread_sensitive=False)()

    assert await event_ids(socket, 1) == [event.id]
    assert await quiet(socket)


async def test_a_held_socket_reads_the_log_again_only_when_it_is_settled_up_to_its_event(
    open_socket, settings, monkeypatch
):
    settings.WS_HEARTBEAT_SECONDS = 3600
    settings.WS_RECHECK_FIRST_SECONDS = 0.001
    settings.WS_RECHECK_SECONDS = 0.004
    reads: list[bool] = []  # per read of the log: did it leave events held
    advance = stream.advance

    def counting(subscription: Any, *args: Any) -> Any:
        frames = advance(subscription, *args)
        reads.append(subscription.held)
        return frames

    monkeypatch.setattr(stream, "advance", counting)
    alice, bob = await new_citizen(), await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())
    # The socket's first read comes after the handshake's answer: wait for it, or it
    # may find the event below held too and count as one more read.
    await _until(lambda: reads == [False])

    with OpenTransaction(bob.dossier) as other:
        event = await db(add_event)(alice.dossier)
        await _until(lambda: reads[-1:] == [True])  # the hint's read found it held
        held_reads = len(reads)
        looks = _watch_state().looks
        await _until(lambda: _watch_state().looks >= looks + 5)
        # Five looks at the log, not one more read of the socket's events.
        assert len(reads) == held_reads
        await sync_to_async(other.commit, thread_sensitive=False)()

    assert await event_ids(socket, 1) == [event.id]
    # One read once the log was settled up to it (a read that finds it still held
    # would mean the watch woke the socket too early).
    assert reads[held_reads:] == [False]


async def test_the_watch_backs_off_by_the_growth_up_to_the_recheck_interval(open_socket, settings):
    settings.WS_HEARTBEAT_SECONDS = 3600
    settings.WS_RECHECK_FIRST_SECONDS = 0.001
    settings.WS_RECHECK_SECONDS = 0.004
    settings.WS_RECHECK_GROWTH = 1.5
    alice, bob = await new_citizen(), await new_citizen()
    await open_socket(alice.ticket())

    with OpenTransaction(bob.dossier):
        await db(add_event)(alice.dossier)
        await _until(lambda: len(_watch_state().delays) >= 6)
        delays = list(_watch_state().delays)[:6]

    assert delays == pytest.approx([0.0015, 0.00225, 0.003375, 0.004, 0.004, 0.004])


async def test_by_default_a_held_frame_waits_at_most_a_quarter_longer_than_it_had_to(
    open_socket, settings
):
    settings.WS_HEARTBEAT_SECONDS = 3600
    settings.WS_RECHECK_FIRST_SECONDS = 0.001
    settings.WS_RECHECK_SECONDS = 2
    alice, bob = await new_citizen(), await new_citizen()
    await open_socket(alice.ticket())

    with OpenTransaction(bob.dossier):
        await db(add_event)(alice.dossier)
        await _until(lambda: len(_watch_state().delays) >= 8)
        delays = list(_watch_state().delays)[:8]

    # Each look finding the event still held waits 1.25 times the previous wait: the
    # next look comes after a quarter of the time waited so far (+ the first wait).
    for before, after in zip([0.001, *delays], delays, strict=False):
        assert after == pytest.approx(before * 1.25)


async def test_a_hint_reaches_the_socket_without_a_hop_to_the_sync_thread(open_socket):
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    # channels' own dispatch closes old connections in the sync thread first.
    with mock.patch(
        "channels.consumer.aclose_old_connections", new_callable=mock.AsyncMock
    ) as close_old:
        event = await db(add_event)(alice.dossier)
        assert await event_ids(socket, 1) == [event.id]

    assert close_old.call_count == 0


async def test_sockets_with_nothing_held_never_start_the_watch(open_socket):
    alice, bob = await new_citizen(), await new_citizen()
    sockets = [(await open_socket(citizen.ticket()))[0] for citizen in (alice, bob, alice)]
    for socket in sockets:
        assert await quiet(socket)

    assert _watch_state().looks == 0
    assert _watch_state().watch is None


async def test_the_watch_stops_when_no_socket_waits(open_socket, settings):
    settings.WS_RECHECK_FIRST_SECONDS = 0.001
    alice, bob = await new_citizen(), await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    with OpenTransaction(bob.dossier) as other:
        event = await db(add_event)(alice.dossier)
        await _until(lambda: _watch_state().looks >= 1)
        await sync_to_async(other.commit, thread_sensitive=False)()
    assert await event_ids(socket, 1) == [event.id]

    await _until(lambda: _watch_state().watch.done())
    assert _watch_state().waiters == []


BLOCKING_LOCK = 7424242  # an advisory lock key of this test only
# The watch's look, made to wait for that lock first.
BLOCKED_LOOK_SQL = "SELECT q.* FROM ({look}) q, pg_advisory_xact_lock(7424242) l"


class LookBlocker:
    """Holds an advisory lock that the watch's looks wait for (on a connection of
    its own): a look is then in flight for as long as the test wants."""

    def __init__(self) -> None:
        params = connection.get_connection_params()
        for sync_only in ("cursor_factory", "context"):
            params.pop(sync_only, None)
        self.conn = psycopg.connect(**params, autocommit=True)
        self.conn.execute("SELECT pg_advisory_lock(%s)", [BLOCKING_LOCK])

    def waiting(self) -> int:
        """Statements waiting for the lock."""
        row = self.conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = 0 AND objid = %s AND objsubid = 1",
            [BLOCKING_LOCK],
        ).fetchone()
        return int(row[0]) if row else 0

    def release(self) -> None:
        self.conn.close()  # its session's lock goes with it


async def test_the_last_socket_closes_the_connection_only_once_no_look_runs_on_it(
    open_socket, settings, monkeypatch, caplog
):
    # The watch's look was in flight, its socket watched by the loop, when the last
    # socket closed the connection under it: uvloop then aborts the whole server
    # ("Fatal Python error: Aborted", libuv's epoll_ctl on a closed fd).
    settings.WS_HEARTBEAT_SECONDS = 3600
    settings.WS_RECHECK_FIRST_SECONDS = 0.001
    settings.WS_RECHECK_SECONDS = 0.05
    alice, bob = await new_citizen(), await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    loop = asyncio.get_running_loop()
    watched: set[int] = set()  # the sockets the loop waits on (psycopg's waits)
    add_reader, remove_reader = loop.add_reader, loop.remove_reader

    def adding(fd: int, *args: Any) -> None:
        watched.add(fd)
        add_reader(fd, *args)

    def removing(fd: int) -> bool:
        watched.discard(fd)
        return remove_reader(fd)

    monkeypatch.setattr(loop, "add_reader", adding)
    monkeypatch.setattr(loop, "remove_reader", removing)
    closes: list[bool] = []  # per connection closed: was the loop waiting on its socket
    close = psycopg.AsyncConnection.close

    async def closing(self: psycopg.AsyncConnection[Any]) -> None:
        if not self.closed:
            closes.append(self.pgconn.socket in watched)
        await close(self)

    monkeypatch.setattr(psycopg.AsyncConnection, "close", closing)
    look_sql = stream.look_sql
    monkeypatch.setattr(stream, "look_sql", lambda: BLOCKED_LOOK_SQL.format(look=look_sql()))

    blocker = LookBlocker()
    try:
        with OpenTransaction(bob.dossier), caplog.at_level("WARNING", logger="tracking.reader"):
            await db(add_event)(alice.dossier)  # held behind bob's open event: the watch looks
            await _until(lambda: blocker.waiting() == 1)  # a look is in flight
            watch = _watch_state().watch
            assert watch is not None

            await socket.disconnect(timeout=WAIT)  # the loop's last socket

            await _until(watch.done)
            assert closes == [False]
            assert blocker.waiting() == 0  # the look was cancelled on the server too
            assert _watch_state().connection is None
            assert "could not be looked at" not in caplog.text
    finally:
        blocker.release()


class LastSocket:
    """The loop's only socket, opened on a communicator of the test's own (the
    `open_socket` fixture disconnects its sockets again at the end)."""

    def __init__(self, citizen: Citizen) -> None:
        self.citizen = citizen
        self.socket = WebsocketCommunicator(application, f"/ws/v1/events?ticket={citizen.ticket()}")
        self.spent: Any = None

    async def open(self) -> None:
        connected, _ = await self.socket.connect(timeout=WAIT)
        assert connected
        await _until(lambda: _watch_state().connection is not None)  # its first read
        self.spent = _watch_state().connection
        assert await self.places() == 1

    async def cancel(self) -> None:
        """Cancel the socket's task (its disconnect), as a server's shutdown does."""
        self.socket.future.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.socket.future
        assert self.socket.future.cancelled()

    async def places(self) -> int:
        """The user's sockets under the cap (tracking/socket_cap.py)."""
        key = socket_cap._key(self.citizen.user.pk)
        return int(await sync_to_async(lambda: get_redis().zcard(key))())


async def test_a_disconnect_cancelled_while_a_statement_runs_still_closes_the_connection(
    realtime_settings, settings
):
    # The loop's last socket closes the connection once no statement runs on it (the
    # lock). Its disconnect cancelled meanwhile, the connection stayed open, left to
    # the garbage collector.
    settings.WS_HEARTBEAT_SECONDS = 3600
    last = LastSocket(await new_citizen())
    await last.open()
    state = _watch_state()

    blocker = LookBlocker()
    try:
        # A statement on the loop's connection, in flight until the blocker lets go.
        statement = asyncio.create_task(
            state.execute({}, "SELECT pg_advisory_xact_lock(%s)", (BLOCKING_LOCK,))
        )
        await _until(lambda: blocker.waiting() == 1)
        await last.socket.send_input({"type": "websocket.disconnect", "code": 1000})
        await _until(lambda: state.sockets == 0)  # its close now waits for the statement
        await last.cancel()
        assert not last.spent.closed  # never under the running statement
    finally:
        blocker.release()

    await statement
    await _until(lambda: last.spent.closed)
    assert state.connection is None
    assert await last.places() == 0


async def test_a_disconnect_cancelled_as_it_leaves_its_groups_still_closes_the_connection(
    realtime_settings, settings
):
    # Cancelled in its first step (leaving the channel layer's groups, a round trip
    # to Redis), the disconnect never reached the reader: the loop counted the socket
    # as open for ever and kept the connection.
    settings.WS_HEARTBEAT_SECONDS = 3600
    last = LastSocket(await new_citizen())
    await last.open()
    layer = get_channel_layer()
    leaving = asyncio.Event()

    async def group_discard(group: str, channel: str) -> None:
        leaving.set()
        await asyncio.Event().wait()  # Redis does not answer before the cancellation

    with mock.patch.object(layer, "group_discard", group_discard):
        await last.socket.send_input({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(leaving.wait(), WAIT)
        await last.cancel()

    assert last.spent.closed
    assert _watch_state().sockets == 0
    assert _watch_state().connection is None
    assert await last.places() == 0


@pytest.mark.parametrize("leaving", ["fails", "is cancelled"])
async def test_a_disconnect_that_cannot_leave_its_groups_still_lets_go_of_everything(
    realtime_settings, settings, leaving
):
    # Redis down (leaving the groups raises) or a shutdown cancelling the socket's task
    # as it waits for Redis: the reader, the socket's place under the cap and Django's
    # connections of the sync thread are let go all the same.
    settings.WS_HEARTBEAT_SECONDS = 3600
    last = LastSocket(await new_citizen())
    await last.open()
    layer = get_channel_layer()
    asked = asyncio.Event()

    async def group_discard(group: str, channel: str) -> None:
        asked.set()
        if leaving == "fails":
            raise ConnectionError("Redis is down")
        await asyncio.Event().wait()  # Redis does not answer before the cancellation

    # Whichever code closes them (this consumer's or channels' own websocket_disconnect).
    closed = mock.AsyncMock(wraps=aclose_old_connections)
    with (
        mock.patch.object(layer, "group_discard", group_discard),
        mock.patch("tracking.consumers.aclose_old_connections", closed),
        mock.patch("channels.generic.websocket.aclose_old_connections", closed),
    ):
        await last.socket.send_input({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(asked.wait(), WAIT)
        if leaving == "fails":
            await asyncio.wait([last.socket.future], timeout=WAIT)
            assert isinstance(last.socket.future.exception(), ConnectionError)
        else:
            await last.cancel()

    assert last.spent.closed
    assert _watch_state().sockets == 0
    assert _watch_state().connection is None
    assert await last.places() == 0
    assert closed.await_count == 1


def test_backoff_grows_from_the_first_interval_up_to_the_cap():
    delays = stream.backoff(0.002, 0.02, 2)
    assert [next(delays) for _ in range(6)] == [0.002, 0.004, 0.008, 0.016, 0.02, 0.02]
    delays = stream.backoff(0.002, 0.004, 1.25)
    assert [next(delays) for _ in range(6)] == pytest.approx(
        [0.002, 0.0025, 0.003125, 0.00390625, 0.004, 0.004]
    )


def test_backoff_first_interval_is_at_least_a_millisecond_and_at_most_the_cap():
    assert next(stream.backoff(0, 1, 2)) == 0.001
    assert next(stream.backoff(0.001, 1, 2)) == 0.001
    assert next(stream.backoff(5, 1, 2)) == 1
    assert next(stream.backoff(0.002, 0, 2)) == 0.001


def test_backoff_never_shrinks_the_interval():
    delays = stream.backoff(0.002, 1, 0.5)
    assert [next(delays) for _ in range(3)] == [0.002, 0.002, 0.002]


# --- limits -------------------------------------------------------------------------------


def _ping_of_size(size: int) -> str:
    frame = json.dumps({"type": "ping", "pad": ""})
    return frame.replace('""', '"' + "x" * (size - len(frame)) + '"')


async def test_inbound_frame_of_exactly_the_limit_is_read(open_socket, settings):
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())
    frame = _ping_of_size(settings.WS_MAX_INBOUND_BYTES)
    assert len(frame.encode()) == 64 * 1024

    await socket.send_to(text_data=frame)

    assert (await socket.receive_json_from(timeout=WAIT))["type"] == "heartbeat"


async def test_inbound_frame_over_the_limit_closes_with_1009(open_socket, settings):
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    await socket.send_to(text_data=_ping_of_size(settings.WS_MAX_INBOUND_BYTES + 1))

    assert await closed_with(socket) == 1009


async def test_inbound_flood_is_throttled_then_closed_with_1008(open_socket, settings):
    settings.WS_INBOUND_RATE = 0
    settings.WS_INBOUND_BURST = 3
    settings.WS_INBOUND_MAX_DROPPED = 2
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    for _ in range(3):
        await socket.send_json_to({"type": "ping"})
        assert (await socket.receive_json_from(timeout=WAIT))["type"] == "heartbeat"
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=WAIT))["code"] == "rate_limited"
    await socket.send_json_to({"type": "ping"})

    assert await closed_with(socket) == 1008


async def test_only_refusals_in_a_row_close_the_socket(open_socket, settings):
    # Bursts hours apart on a long-lived socket must not add up to a close.
    from tracking import consumers

    settings.WS_INBOUND_MAX_DROPPED = 2
    settings.WS_HEARTBEAT_SECONDS = 3600  # every heartbeat below answers a ping
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())
    answers = iter([False, True, False, True, False, False])
    with mock.patch.object(consumers.TokenBucket, "take", side_effect=lambda: next(answers)):
        for expected in ("rate_limited", "heartbeat", "rate_limited", "heartbeat"):
            await socket.send_json_to({"type": "ping"})
            frame = await socket.receive_json_from(timeout=WAIT)
            assert frame.get("code", frame["type"]) == expected
        await socket.send_json_to({"type": "ping"})
        assert (await socket.receive_json_from(timeout=WAIT))["code"] == "rate_limited"
        await socket.send_json_to({"type": "ping"})  # the second refusal in a row

        assert await closed_with(socket) == 1008


async def test_five_sockets_per_user_stay_open(open_socket):
    alice = await new_citizen()
    sockets = [(await open_socket(alice.ticket()))[0] for _ in range(5)]

    event = await db(add_event)(alice.dossier)

    for socket in sockets:
        assert await event_ids(socket, 1) == [event.id]


async def test_sixth_socket_closes_the_oldest_with_4001(open_socket):
    alice = await new_citizen()
    bob = await new_citizen()
    sockets = [(await open_socket(alice.ticket()))[0] for _ in range(5)]
    bobs, _, _ = await open_socket(bob.ticket())

    newest, connected, _ = await open_socket(alice.ticket())

    assert connected
    assert await closed_with(sockets[0]) == 4001
    event = await db(add_event)(alice.dossier)
    for socket in [*sockets[1:], newest]:
        assert await event_ids(socket, 1) == [event.id]
    assert await quiet(bobs)


# --- revocation --------------------------------------------------------------------------


async def test_revoking_a_session_closes_its_sockets_with_4003(open_socket):
    alice = await new_citizen()
    other_session, _ = await db(sign_in)(alice.user)
    first, _, _ = await open_socket(alice.ticket())
    second, _, _ = await open_socket(alice.ticket())
    other, _, _ = await open_socket(await db(tickets.issue_ticket)(alice.user.pk, other_session.pk))

    await db(revoke_session)(alice.session, reason="logout")

    assert await closed_with(first) == 4003
    assert await closed_with(second) == 4003
    await other.send_json_to({"type": "ping"})
    assert (await other.receive_json_from(timeout=WAIT))["type"] == "heartbeat"


async def test_revoking_all_sessions_closes_every_socket(open_socket):
    alice = await new_citizen()
    other_session, _ = await db(sign_in)(alice.user)
    first, _, _ = await open_socket(alice.ticket())
    other, _, _ = await open_socket(await db(tickets.issue_ticket)(alice.user.pk, other_session.pk))

    await db(revoke_all_sessions)(alice.user, reason="support_reset")

    assert await closed_with(first) == 4003
    assert await closed_with(other) == 4003


def _revoke_then_roll_back(session: DeviceSession) -> None:
    with contextlib.suppress(RuntimeError), transaction.atomic():
        revoke_session(session, reason="logout")
        raise RuntimeError("the surrounding action failed")


async def test_revocation_rolled_back_leaves_the_socket_open(open_socket):
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())

    await db(_revoke_then_roll_back)(alice.session)

    assert await quiet(socket)
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=WAIT))["type"] == "heartbeat"


async def test_heartbeat_closes_a_socket_whose_session_was_revoked_silently(open_socket, settings):
    settings.WS_HEARTBEAT_SECONDS = 0.1
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())
    # Revoked without the channel-layer notice (as if Redis had lost it).
    await db(DeviceSession.objects.filter(pk=alice.session.pk).update)(revoked_at=timezone.now())

    assert await closed_with(socket) == 4003


async def test_heartbeat_delivers_an_event_whose_hint_was_lost(open_socket, settings):
    settings.WS_HEARTBEAT_SECONDS = 0.1
    alice = await new_citizen()
    socket, _, _ = await open_socket(alice.ticket())
    # Committed without the channel-layer hint (as if Redis had lost it).
    with mock.patch("dossiers.events.publish_hint") as publish_hint:
        event = await db(add_event)(alice.dossier)
    assert publish_hint.call_count == 1

    assert await event_ids(socket, 1) == [event.id]


# --- organisation members who do not watch ----------------------------------------------


def _quiet_member_world() -> tuple[Citizen, Dossier]:
    member = Citizen()
    owner = make_user()
    company = make_organisation(owner)
    Membership.objects.create(organisation=company, user=member.user, watches=False)
    return member, make_dossier(owner, organisation=company, status=Dossier.Status.NEW)


async def test_member_who_does_not_watch_gets_no_organisation_events(open_socket):
    member, company_dossier = await db(_quiet_member_world)()
    socket, _, _ = await open_socket(member.ticket())

    await db(add_event)(company_dossier)
    own = await db(add_event)(member.dossier)

    assert await event_ids(socket, 1) == [own.id]
    assert await quiet(socket)


async def test_member_who_does_not_watch_can_narrow_to_an_organisation_dossier(open_socket):
    member, company_dossier = await db(_quiet_member_world)()
    socket, _, _ = await open_socket(member.ticket(), dossier_id=company_dossier.pk)

    await db(add_event)(member.dossier)
    event = await db(add_event)(company_dossier)

    assert await event_ids(socket, 1) == [event.id]
    assert await quiet(socket)


# --- the hint's path and the frame's work (pinned: each was done on every frame) -----
#
# A hint is a call of the socket's listener in the layer's receive task: no msgpack
# decoding into a channel's queue for channels' dispatch, and no polling read of the
# pub/sub connection (redis-py's `get_message` every 0.1 s). A frame's JSON is built
# once per event and language for every socket of the process that sends it, its
# text taken from a per-language table, no translation activated per batch.


class Counted:
    """Patches `owner.name` with a wrapper that counts its calls (and still calls it)."""

    def __init__(self, owner: Any, name: str, when: Callable[..., bool] | None = None) -> None:
        self.calls = 0
        original = getattr(owner, name)

        def counting(*args: Any, **kwargs: Any) -> Any:
            if when is None or when(*args, **kwargs):
                self.calls += 1
            return original(*args, **kwargs)

        self.patch = mock.patch.object(owner, name, counting)

    def __enter__(self) -> Counted:
        self.patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.patch.stop()


@pytest.fixture
def counted() -> Iterator[Any]:
    started: list[Counted] = []

    def _count(owner: Any, name: str, when: Callable[..., bool] | None = None) -> Counted:
        started.append(Counted(owner, name, when).__enter__())
        return started[-1]

    yield _count
    for item in started:
        item.__exit__()


async def test_a_hint_reaches_the_socket_without_the_layers_queue_or_a_polling_read(
    open_socket, counted
):
    alice = await new_citizen(language="en")
    socket, connected, _ = await open_socket(alice.ticket())
    assert connected
    decoded = counted(RedisPubSubChannelLayer, "deserialize")
    polls = counted(PubSub, "get_message")

    events = [
        await db(add_event)(alice.dossier, "dossier.accepted", status_after=2),
        await db(add_event)(alice.dossier, "dossier.processing_started", status_after=4),
        await db(add_event)(alice.dossier, "dossier.payment_requested", status_after=5),
    ]

    assert await event_ids(socket, 3) == [event.id for event in events]
    # Three hints came (the frames prove it): none was decoded for a channel's
    # queue, and the receive task never polled the connection.
    assert (decoded.calls, polls.calls) == (0, 0)


async def test_a_frame_is_built_once_for_every_socket_that_sends_it(open_socket, counted):
    alice = await new_citizen(language="en")
    phone, _, _ = await open_socket(alice.ticket())
    tablet, _, _ = await open_socket(alice.ticket())
    # An event frame's JSON written (less its data, which is PostgreSQL's text).
    built = counted(
        json,
        "dumps",
        lambda value, *_, **__: isinstance(value, dict) and value.get("type") == "event",
    )

    event = await db(add_event)(alice.dossier, "dossier.accepted", status_after=2)

    sent = await next_event(phone)
    assert sent["id"] == event.id
    assert await next_event(tablet) == sent
    assert built.calls == 1


async def test_a_frame_activates_no_translation(open_socket, counted):
    hoa = await new_citizen(language="vi")
    socket, _, _ = await open_socket(hoa.ticket())
    with translation.override("vi"):
        expected = [event_text("dossier.accepted"), event_text("dossier.processing_started")]
    assert expected[0] == "Cơ quan đã tiếp nhận hồ sơ và cấp giấy tiếp nhận."
    # The first frame of each text in the process may look it up in its language.
    await db(add_event)(hoa.dossier, "dossier.accepted", status_after=2)
    await db(add_event)(hoa.dossier, "dossier.processing_started", status_after=4)
    assert [(await next_event(socket))["text"] for _ in expected] == expected
    activations = counted(translation, "activate")

    await db(add_event)(hoa.dossier, "dossier.accepted", status_after=2)
    await db(add_event)(hoa.dossier, "dossier.processing_started", status_after=4)

    assert [(await next_event(socket))["text"] for _ in expected] == expected
    assert activations.calls == 0


def test_the_logs_read_has_only_int_and_text_parameters(citizen_factory):
    """psycopg writes an int or a text in C; a UUID or a list (the seen ids) took it
    Python calls on every hint, for every socket."""
    alice = citizen_factory()
    for dossier_id in (None, alice.dossier.pk):
        subscription = stream.Subscription(
            user=alice.user,
            session_id=alice.session.pk,
            dossier_id=dossier_id,
            position=stream.Position(0),
            seen=frozenset({7, 3}),
        )
        _, params = stream.pending_query(subscription, 10)
        assert {type(value) for value in params} == {int, str}
        assert "{3,7}" in params
        assert str(alice.user.pk) in params
