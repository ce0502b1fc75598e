"""How many sockets each user has open: at most WS_MAX_SOCKETS_PER_USER.

A Redis sorted set per user holds the channel names of their sockets, scored
by connection time. Registering a new socket pops the oldest ones beyond the
cap in the same atomic script; the caller tells them to close. A socket of a
crashed server stays in the set until it is the oldest and gets popped, which
closes nothing but frees its place.
"""

from __future__ import annotations

import threading
import time
import uuid

from django.conf import settings

from backend.redis import get_redis

# The set is forgotten a day after the user's last connection.
KEY_TTL_SECONDS = 24 * 3600

_REGISTER = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if extra > 0 then
  return redis.call('ZPOPMIN', KEYS[1], extra)
end
return {}
"""

# Embedded default (no Redis): one process, so a dict will do.
_local: dict[str, list[tuple[float, str]]] = {}
_local_lock = threading.Lock()


def _key(user_id: uuid.UUID) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:ws-sockets:{user_id.hex}"


def register_socket(user_id: uuid.UUID, channel_name: str) -> list[str]:
    """Add a socket; returns the channel names of the sockets it displaces (oldest first)."""
    cap = max(1, settings.WS_MAX_SOCKETS_PER_USER)
    moment = time.time()
    client = get_redis()
    if client is None:
        with _local_lock:
            entries = sorted([*_local.get(_key(user_id), []), (moment, channel_name)])
            extra = max(0, len(entries) - cap)
            _local[_key(user_id)] = entries[extra:]
            return [name for _, name in entries[:extra]]
    popped = client.eval(
        _REGISTER, 1, _key(user_id), repr(moment), channel_name, cap, KEY_TTL_SECONDS
    )
    # ZPOPMIN answers [member, score, member, score, ...].
    return [member.decode() for member in popped[::2]]


def unregister_socket(user_id: uuid.UUID, channel_name: str) -> None:
    client = get_redis()
    if client is None:
        with _local_lock:
            entries = _local.get(_key(user_id), [])
            _local[_key(user_id)] = [entry for entry in entries if entry[1] != channel_name]
        return
    client.zrem(_key(user_id), channel_name)
