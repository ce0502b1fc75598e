"""The Redis channel layer, with a connection pool that waits when it is busy.

channels_redis gives each process a redis-py pool of at most 100 connections
that fails at once (`MaxConnectionsError`) when more are needed. One process
holds thousands of sockets, and a burst (a deploy or a network blip closing
them all, then their reconnections) runs thousands of group_add/group_discard
at the same moment: most failed, and a socket whose group_discard failed never
ran its own disconnect (ticker, per-user socket count). Here the pool keeps
the same bound but a caller waits for a free connection (up to `timeout`
seconds, CHANNEL_LAYER_POOL_TIMEOUT) instead of failing.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class RedisChannelLayer(BaseRedisChannelLayer):
    def create_pool(self, index: int) -> BlockingConnectionPool:
        host: dict[str, Any] = dict(self.hosts[index])
        return BlockingConnectionPool.from_url(host.pop("address"), **host)
