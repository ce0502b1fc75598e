"""The channel layer's pool: a burst larger than the pool waits instead of failing."""

from __future__ import annotations

import asyncio
import uuid

from channels.layers import get_channel_layer
from django.conf import settings
from redis.asyncio import BlockingConnectionPool

from backend.channel_layer import RedisChannelLayer


def test_the_project_uses_the_waiting_pool() -> None:
    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)
    pool = layer.create_pool(0)
    assert isinstance(pool, BlockingConnectionPool)
    assert (
        pool.max_connections
        == settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["max_connections"]
    )


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
