"""The WebSocket stream through a real uvicorn server and the `websockets` client.

The server runs in a thread of the test process on a free loopback port, with
the real Redis channel layer and the test database; the app is reached over
TCP exactly as a phone reaches it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from channels.layers import channel_layers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from auth.actions.sessions import revoke_session
from backend.asgi import application
from dossiers.models import Dossier
from fakes.harness import free_port
from tests.factories import make_dossier
from tests.tracking.conftest import Citizen, OpenTransaction, add_event

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 60  # seconds: a busy machine (other suites share it)


@pytest.fixture
def server(realtime_settings: Any) -> Iterator[str]:
    with running_server() as address:
        yield address


@contextlib.contextmanager
def running_server(app: Any = application, stop_wait: float = WAIT) -> Iterator[str]:
    """uvicorn serving `app` in a thread; its `host:port`.

    Stopped on the way out, however the block ends, and the thread joined: a server
    still running `stop_wait` seconds after it was asked to stop fails the test
    (AssertionError, chained to the block's own error if any) instead of serving on,
    unseen, into the next tests and their database.
    """
    # A fresh channel layer per server: one layer instance serves one event loop.
    channel_layers.backends.clear()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while not instance.started:
            assert thread.is_alive(), "uvicorn ended before it started (port taken?)"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=stop_wait)
        channel_layers.backends.clear()
        assert not thread.is_alive(), f"uvicorn on port {port} did not stop within {stop_wait} s"


def ticket_over_http(server: str, citizen: Citizen) -> str:
    response = httpx.post(
        f"http://{server}/api/v1/realtime/ticket",
        json={},
        headers={"Authorization": f"Bearer {citizen.tokens.access_token}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["ticket"])


def open_stream(server: str, ticket: str, origin: str | None = None, **params: Any) -> Any:
    query = urlencode({"ticket": ticket, **{key: str(value) for key, value in params.items()}})
    return connect(f"ws://{server}/ws/v1/events?{query}", origin=origin, open_timeout=WAIT)  # type: ignore[arg-type]


def frames(socket: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(socket.recv(timeout=WAIT)) for _ in range(count)]


def event_frames(socket: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next `count` event frames (heartbeats may come in between), within WAIT
    in all: heartbeats alone must not keep a test waiting for ever."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT
    while len(found) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"{len(found)} of {count} event frames within {WAIT} s"
        frame = json.loads(socket.recv(timeout=left))
        if frame["type"] != "heartbeat":
            found.append(frame)
    return found


def silent(socket: ClientConnection, seconds: float = 0.3) -> bool:
    """No frame but heartbeats for a moment."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = json.loads(socket.recv(timeout=left))
        except TimeoutError:
            return True
        if frame["type"] != "heartbeat":
            return False
    return True


def close_code(socket: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent."""
    while True:
        try:
            socket.recv(timeout=WAIT)
        except ConnectionClosed:
            assert socket.close_code is not None
            return socket.close_code


def test_live_events_reach_a_phone_over_a_real_server(server):
    alice = Citizen(language="en")
    with open_stream(server, ticket_over_http(server, alice)) as stream:
        event = add_event(alice.dossier, "dossier.accepted", status_after=2)

        [frame] = event_frames(stream, 1)

    assert (frame["type"], frame["id"], frame["event_type"], frame["status"]) == (
        "event",
        event.id,
        "dossier.accepted",
        2,
    )
    assert frame["text"] == "The agency accepted the dossier and issued a receipt."


def test_ticket_is_single_use_over_a_real_server(server):
    alice = Citizen()
    ticket = ticket_over_http(server, alice)
    with open_stream(server, ticket), open_stream(server, ticket) as second:
        [frame] = frames(second, 1)
        assert frame["code"] == "invalid_ticket"
        assert close_code(second) == 4401


def test_foreign_origin_gets_403_and_allowed_origin_connects(server):
    alice = Citizen()
    with pytest.raises(InvalidStatus) as refused:
        open_stream(server, ticket_over_http(server, alice), origin="https://evil.example")
    assert refused.value.response.status_code == 403
    with open_stream(
        server, ticket_over_http(server, alice), origin="https://app.dichvucong.example"
    ) as allowed:
        allowed.send(json.dumps({"type": "ping"}))
        assert frames(allowed, 1)[0]["type"] == "heartbeat"


def test_no_events_of_other_users_over_a_real_server(server):
    alice = Citizen()
    bob = Citizen()
    with open_stream(server, ticket_over_http(server, alice)) as stream:
        add_event(bob.dossier)
        own = add_event(alice.dossier)

        assert [frame["id"] for frame in event_frames(stream, 1)] == [own.id]
        assert silent(stream)


def test_resume_after_missed_events_over_a_real_server(server):
    alice = Citizen()
    with open_stream(server, ticket_over_http(server, alice)) as stream:
        seen = add_event(alice.dossier)
        assert event_frames(stream, 1)[0]["id"] == seen.id
    missed = [add_event(alice.dossier).id for _ in range(5)]

    with open_stream(server, ticket_over_http(server, alice), last_event_id=seen.id) as stream:
        live = add_event(alice.dossier)
        assert [frame["id"] for frame in event_frames(stream, 6)] == [*missed, live.id]
        assert silent(stream)


def test_out_of_order_commit_over_a_real_server(server):
    alice = Citizen()
    other = make_dossier(alice.user, status=Dossier.Status.NEW)
    with open_stream(server, ticket_over_http(server, alice)) as stream:
        with OpenTransaction(alice.dossier) as first:
            later = add_event(other)
            assert silent(stream)
            earlier = first.commit()

        assert [frame["id"] for frame in event_frames(stream, 2)] == [earlier.id, later.id]


def test_unknown_resume_point_sends_resync_over_a_real_server(server):
    alice = Citizen()
    with open_stream(server, ticket_over_http(server, alice), last_event_id=10**12) as stream:
        [frame] = frames(stream, 1)
    assert (frame["type"], frame["reason"]) == ("resync", "unknown_event")


def test_oversized_frame_closes_with_1009_over_a_real_server(server):
    alice = Citizen()
    with open_stream(server, ticket_over_http(server, alice)) as stream:
        stream.send("x" * (64 * 1024 + 1))
        assert close_code(stream) == 1009


def test_sixth_socket_closes_the_oldest_over_a_real_server(server):
    alice = Citizen()
    with contextlib.ExitStack() as stack:
        streams = [
            stack.enter_context(open_stream(server, ticket_over_http(server, alice)))
            for _ in range(6)
        ]
        assert close_code(streams[0]) == 4001
        event = add_event(alice.dossier)
        for stream in streams[1:]:
            assert event_frames(stream, 1)[0]["id"] == event.id


def test_logout_closes_the_sessions_socket_over_a_real_server(server):
    alice = Citizen()
    with open_stream(server, ticket_over_http(server, alice)) as stream:
        revoke_session(alice.session, reason="logout")
        assert close_code(stream) == 4003


def test_heartbeat_over_a_real_server(server, settings):
    settings.WS_HEARTBEAT_SECONDS = 0.1
    alice = Citizen()
    with open_stream(server, ticket_over_http(server, alice)) as stream:
        assert frames(stream, 1)[0]["type"] == "heartbeat"


def test_a_server_that_does_not_stop_fails_the_test_that_ran_it() -> None:
    # Its thread used to be joined with a timeout and never looked at again: a
    # server that did not stop served on, unseen, into the next tests.
    entered, release = threading.Event(), threading.Event()

    async def stuck(scope: dict[str, Any], receive: Any, send: Any) -> None:
        """An app that holds the server's event loop (a blocking call in a handler):
        the server cannot see that it was asked to stop."""
        if scope["type"] != "http":
            return
        entered.set()
        release.wait(WAIT)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    server = running_server(stuck, stop_wait=0.2)
    address = server.__enter__()
    name = f"uvicorn-{address.rpartition(':')[2]}"
    [server_thread] = [thread for thread in threading.enumerate() if thread.name == name]
    answers: list[int] = []
    client = threading.Thread(
        target=lambda: answers.append(httpx.get(f"http://{address}/", timeout=WAIT).status_code)
    )
    client.start()
    try:
        assert entered.wait(WAIT)
        with pytest.raises(AssertionError, match=r"did not stop within 0\.2 s"):
            server.__exit__(None, None, None)
    finally:
        release.set()
    client.join(WAIT)
    server_thread.join(WAIT)  # released, it stops: it was only held
    assert answers == [204]
    assert not server_thread.is_alive()
