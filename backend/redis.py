"""The shared Redis client for atomic counters and health checks."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        retry=settings.REDIS_RETRY,  # a fresh connection after Redis dropped ours
    )


def client_for(url: str) -> redis.Redis:
    """The process's client (and connection pool) for the Redis at `url`."""
    return _client(url, settings.REDIS_SOCKET_TIMEOUT)


def get_redis() -> redis.Redis | None:
    """The Redis client, or None on the embedded default (no REDIS_URL)."""
    if not settings.REDIS_URL:
        return None
    return client_for(settings.REDIS_URL)
