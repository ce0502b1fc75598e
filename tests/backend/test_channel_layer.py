"""The project's channel layers: pub/sub by default; the core one's pool waits when busy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from channels.layers import get_channel_layer
from django.conf import settings
from redis.asyncio import Redis

from backend.channel_layer import RedisChannelLayer, RedisPubSubChannelLayer
from fakes.harness import RedisServer

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30


CORE_LAYER_CHECK = """
import django
django.setup()
from channels.layers import get_channel_layer
from django.conf import settings
from redis.asyncio import Redis
from redis.asyncio import BlockingConnectionPool
from backend.channel_layer import RedisChannelLayer
layer = get_channel_layer()
assert isinstance(layer, RedisChannelLayer), type(layer)
pool = layer.create_pool(0)
assert isinstance(pool, BlockingConnectionPool), type(pool)
hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
assert pool.max_connections == hosts[0]["max_connections"], pool.max_connections
print("core layer ok")
"""


def settings_process(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "backend.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_project_uses_the_recovering_pubsub_layer_by_default() -> None:
    assert isinstance(get_channel_layer(), RedisPubSubChannelLayer)


def test_channel_layer_core_uses_the_waiting_pool() -> None:
    result = settings_process(CORE_LAYER_CHECK, CHANNEL_LAYER="core")
    assert result.returncode == 0, result.stderr
    assert "core layer ok" in result.stdout


def test_an_unknown_channel_layer_is_refused() -> None:
    result = settings_process("import django; django.setup()", CHANNEL_LAYER="rabbit")
    assert result.returncode != 0
    assert "CHANNEL_LAYER must be pubsub or core" in result.stderr


async def test_a_burst_of_group_changes_larger_than_the_pool_all_succeed() -> None:
    layer = RedisChannelLayer(
        hosts=[{"address": settings.REDIS_URL, "max_connections": 2, "timeout": 30}],
        prefix=f"test-burst-{uuid.uuid4().hex}",
    )
    group = "burst"
    channels = [f"specific.burst!{index}" for index in range(40)]
    try:
        await asyncio.gather(*(layer.group_add(group, channel) for channel in channels))
        members = await layer.connection(0).zrange(layer._group_key(group), 0, -1)
        assert sorted(member.decode() for member in members) == sorted(channels)

        await asyncio.gather(*(layer.group_discard(group, channel) for channel in channels))
        assert await layer.connection(0).zcard(layer._group_key(group)) == 0
    finally:
        await layer.flush()


async def test_the_pubsub_layer_recovers_from_a_redis_restart(tmp_path, caplog) -> None:
    """A burst of subscribes right after a restart races the receive task: all succeed,
    and every channel, old and new, gets the next group message."""
    server = RedisServer(tmp_path)
    server.start()
    host = {**settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0], "address": server.url}
    layer = RedisPubSubChannelLayer(hosts=[host], prefix="test-restart")
    try:
        before = [await layer.new_channel() for _ in range(5)]
        for channel in before:
            await layer.group_add("restart", channel)

        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)  # same port: the layer's connection is dead

        after = await asyncio.gather(*(layer.new_channel() for _ in range(20)))
        await asyncio.gather(*(layer.group_add("restart", channel) for channel in after))
        # Whatever was published before the re-subscription is lost (hints):
        # wait until Redis knows every channel again, then send.
        expected = {channel.encode() for channel in [*before, *after]}
        deadline = time.monotonic() + WAIT
        while not expected <= await subscribed_channels(server):
            assert time.monotonic() < deadline, "the layer did not re-subscribe"
            await asyncio.sleep(0.05)
        await layer.group_send("restart", {"type": "hint"})
        for channel in [*before, *after]:
            assert await asyncio.wait_for(layer.receive(channel), WAIT) == {"type": "hint"}
    finally:
        await layer.flush()
        server.stop()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


RESTARTS = 8


async def test_every_channel_stays_live_through_many_redis_restarts_under_load(
    tmp_path, caplog
) -> None:
    """Restart Redis again and again while hints are published and sockets come and
    go: after each restart every channel, subscribed before or after it, gets the
    next group message (none is left deaf by a subscribe or a publish that came
    between the loss and the reconnection)."""
    server = RedisServer(tmp_path)
    server.start()
    host = {**settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0], "address": server.url}
    layer = RedisPubSubChannelLayer(hosts=[host], prefix=f"test-restarts-{uuid.uuid4().hex}")
    stop = asyncio.Event()

    async def publish_hints() -> None:  # the load: hints published all the time
        while not stop.is_set():
            with contextlib.suppress(Exception):  # lost while Redis is down: hints
                await layer.group_send("busy", {"type": "busy"})
            await asyncio.sleep(0.005)

    async def churn() -> None:  # sockets opening and closing all the time
        while not stop.is_set():
            with contextlib.suppress(Exception):
                channel = await layer.new_channel()
                await layer.group_add("churn", channel)
                await layer.group_discard("churn", channel)
            await asyncio.sleep(0.005)

    load = [asyncio.create_task(publish_hints()), asyncio.create_task(churn())]
    try:
        live = [await layer.new_channel() for _ in range(10)]
        for channel in live:
            await layer.group_add("restart", channel)
        for round_ in range(RESTARTS):
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)  # same port: the layer's connection is dead
            joined = await asyncio.gather(*(layer.new_channel() for _ in range(3)))
            await asyncio.gather(*(layer.group_add("restart", channel) for channel in joined))
            live.extend(joined)
            expected = {layer._get_group_channel_name("restart").encode()} | {
                channel.encode() for channel in live
            }
            deadline = time.monotonic() + WAIT
            while not expected <= await subscribed_channels(server):
                missing = len(expected - await subscribed_channels(server))
                assert time.monotonic() < deadline, (
                    f"restart {round_ + 1}: {missing} channels never subscribed again"
                )
                await asyncio.sleep(0.05)
            await layer.group_send("restart", {"type": "hint", "round": round_})
            for channel in live:
                message = await asyncio.wait_for(layer.receive(channel), WAIT)
                assert message == {"type": "hint", "round": round_}
    finally:
        stop.set()
        await asyncio.gather(*load, return_exceptions=True)
        await layer.flush()
        server.stop()
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def subscribed_channels(server: RedisServer) -> set[bytes]:
    client = Redis.from_url(server.url)
    try:
        return set(await client.pubsub_channels())
    finally:
        await client.aclose()


async def test_a_listener_hears_its_group_and_holds_its_redis_channel(tmp_path) -> None:
    """`listen`: a group message calls the callback (no channel's queue); the group's
    Redis channel stays subscribed while a listener or a member is left, not after."""
    server = RedisServer(tmp_path)
    server.start()
    host = {**settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0], "address": server.url}
    layer = RedisPubSubChannelLayer(hosts=[host], prefix="test-listen")
    heard: asyncio.Queue[str] = asyncio.Queue()

    def listener() -> None:
        heard.put_nowait("hint")

    name = layer._get_layer()._get_group_channel_name("dossier").encode()
    try:
        member = await layer.new_channel()
        await layer.group_add("dossier", member)
        await layer.listen("dossier", listener)
        await layer.group_discard("dossier", member)  # the listener keeps the channel
        assert name in await subscribed_channels(server)

        await layer.group_send("dossier", {"type": "dossier.event"})
        assert await asyncio.wait_for(heard.get(), WAIT) == "hint"

        await layer.unlisten("dossier", listener)
        deadline = time.monotonic() + WAIT
        while name in await subscribed_channels(server):
            assert time.monotonic() < deadline, "the group's channel stayed subscribed"
            await asyncio.sleep(0.05)
    finally:
        await layer.flush()
        server.stop()
