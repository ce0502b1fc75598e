"""After Redis restarts, the first request that needs it works: no dead pooled connection.

Every Redis user of the app (the channel layer, the cache, the shared client of
backend.redis) keeps a pool; a restart leaves its connections dead. The test
runs its own redis-server on a free port, uses each pool, restarts the server on
the same port, then checks the very first socket, ticket, cache call and OTP
verification afterwards (settings.REDIS_RETRIES: one retry on a fresh connection).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from channels.layers import channel_layers
from django.core.cache import cache

from backend.redis import get_redis
from fakes.harness import RedisServer
from tests.accounts.conftest import PASSWORD, device, last_code
from tests.conftest import ApiClient
from tests.tracking.conftest import Citizen, add_event
from tests.tracking.test_stream_server import (
    WAIT,
    event_frames,
    open_stream,
    running_server,
    ticket_over_http,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_redis(tmp_path: Path, realtime_settings: Any) -> Iterator[RedisServer]:
    """A redis-server of this test, with the project's own Redis settings pointed at it."""
    server = RedisServer(tmp_path)
    server.start()
    settings = realtime_settings
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = server.url
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = server.url
    settings.REDIS_URL = server.url
    settings.CACHES = caches
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    try:
        yield server
    finally:
        server.stop()
        channel_layers.backends.clear()


def restart(server: RedisServer) -> None:
    server.stop()
    server.start()  # same port, empty: every pooled connection of the app is now dead


def test_first_socket_and_ticket_after_a_redis_restart_succeed(own_redis) -> None:
    alice = Citizen(language="en")
    with running_server() as server:
        with open_stream(server, ticket_over_http(server, alice)) as stream:
            before = add_event(alice.dossier, "dossier.accepted", status_after=2)
            assert [frame["id"] for frame in event_frames(stream, 1)] == [before.id]

        restart(own_redis)

        ticket = ticket_over_http(server, alice)  # 201, not 500 (asserted inside)
        with open_stream(server, ticket) as stream:  # 101: InvalidStatus(500) without retry
            after = add_event(alice.dossier, "dossier.processing_started", status_after=4)
            [frame] = event_frames(stream, 1)

    assert (frame["id"], frame["event_type"]) == (after.id, "dossier.processing_started")


def subscribed_channels(server: RedisServer) -> set[bytes]:
    with redis.Redis.from_url(server.url) as client:
        return set(client.pubsub_channels())


def test_a_socket_open_across_a_redis_restart_gets_the_next_hint(
    own_redis, realtime_settings
) -> None:
    """The layer re-subscribes its channels itself: no socket has to reconnect."""
    realtime_settings.WS_HEARTBEAT_SECONDS = 3600  # a frame can only come from a hint
    alice = Citizen(language="en")
    with (
        running_server() as server,
        open_stream(server, ticket_over_http(server, alice)) as stream,
    ):
        before = add_event(alice.dossier, "dossier.accepted", status_after=2)
        assert [frame["id"] for frame in event_frames(stream, 1)] == [before.id]
        channels = subscribed_channels(own_redis)
        assert channels  # the socket's channel and groups

        restart(own_redis)

        # A hint published before the layer is back is lost (hints are
        # best effort): wait for its re-subscription, then publish.
        deadline = time.monotonic() + WAIT
        while not channels <= subscribed_channels(own_redis):
            assert time.monotonic() < deadline, "the layer did not re-subscribe"
            time.sleep(0.05)
        after = add_event(alice.dossier, "dossier.processing_started", status_after=4)
        [frame] = event_frames(stream, 1)

    assert (frame["id"], frame["event_type"]) == (after.id, "dossier.processing_started")


def test_cache_counters_and_otp_work_on_the_first_call_after_a_redis_restart(
    own_redis, settings
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = get_redis()
    assert client is not None
    cache.set("before-restart", 1)
    assert client.ping()
    api = ApiClient()
    phone = "+84912340077"
    started = api.post(
        "/api/v1/auth/register",
        {"phone": phone, "full_name": "Nguyễn Thị Lan", "password": PASSWORD},
    )
    assert started.status_code == 202, started.content

    restart(own_redis)

    assert cache.get("before-restart") is None  # gone with the restart, and no error
    assert client.ping()
    verified = api.post(
        "/api/v1/auth/register/verify",
        {"challenge_id": started.json()["challenge_id"], "code": last_code(phone), **device()},
    )
    assert verified.status_code == 201, verified.content


def test_an_event_written_while_redis_is_down_comes_once_it_is_back(
    own_redis, realtime_settings
) -> None:
    """Its hint was lost: once the layer's connection is back, every socket of the
    process reads the log (not only at its next heartbeat)."""
    realtime_settings.WS_HEARTBEAT_SECONDS = 3600  # a frame can only come from a hint
    alice = Citizen(language="en")
    with (
        running_server() as server,
        open_stream(server, ticket_over_http(server, alice)) as stream,
    ):
        before = add_event(alice.dossier, "dossier.accepted", status_after=2)
        assert [frame["id"] for frame in event_frames(stream, 1)] == [before.id]

        own_redis.stop()
        during = add_event(alice.dossier, "dossier.processing_started", status_after=4)
        own_redis.start()  # same port, empty: the hint of `during` is lost

        [frame] = event_frames(stream, 1)

    assert frame["id"] == during.id
