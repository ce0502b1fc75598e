"""Publishing to the channel layer from sync code reaches the layer's own subscribers.

`backend.realtime.send_to_groups` publishes with a plain Redis client in the
format of channels_redis's pub/sub layer (its serializer, its channel names for
groups): a channels_redis upgrade that changes either fails here.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

from backend.realtime import send_to_groups

WAIT = 10


@pytest.fixture
def layer():
    """The project's channel layer: backend.channel_layer's pub/sub one."""
    channel_layers.backends.clear()
    layer = get_channel_layer()
    assert isinstance(layer, RedisPubSubChannelLayer)  # send_to_groups's fast path
    yield layer
    channel_layers.backends.clear()


async def test_every_group_gets_the_message_and_nothing_else(layer):
    first, second, outsider = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("user.test-a", first)
    await layer.group_add("dossier.test-b", second)
    await layer.group_add("user.test-c", outsider)
    message = {"type": "dossier.event", "event_id": 7, "dossier_id": "d"}

    await sync_to_async(send_to_groups)(["user.test-a", "dossier.test-b"], message)

    assert await asyncio.wait_for(layer.receive(first), WAIT) == message
    assert await asyncio.wait_for(layer.receive(second), WAIT) == message
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(outsider), 0.3)
    await layer.flush()


async def test_no_groups_sends_nothing(layer):
    channel = await layer.new_channel()
    await layer.group_add("user.test-d", channel)

    await sync_to_async(send_to_groups)([], {"type": "dossier.event"})

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)
    await layer.flush()
