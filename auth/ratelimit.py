"""Atomic counters for attempts and SMS sending (Redis, one Lua script each).

Each check-and-count runs as one script, so concurrent requests can never slip
past a limit between the check and the increment: 50 parallel wrong codes
against a limit of 10 get exactly 10 evaluations. When Redis cannot be reached
the callers fail closed (503): no code is checked and no SMS is sent without
its counters.

On the embedded default (no REDIS_URL) the Django cache stands in; it is
per-process and not atomic, which is acceptable for a developer laptop only.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _
from redis.commands.core import Script

from backend.errors import RETRY_AFTER_SECONDS, ServiceUnavailable
from backend.middleware import rate_limit_address
from backend.redis import get_redis

logger = logging.getLogger(__name__)

PREFIX = "acct"

# KEYS: lock, failures, per-code tries (optional)
# ARGV: failure limit, lock ms, failure window s, per-code limit (0 = none), code ttl s
_RESERVE = """
local pttl = redis.call('PTTL', KEYS[1])
if pttl > 0 then return {-1, pttl} end
local code_limit = tonumber(ARGV[4])
if code_limit > 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used >= code_limit then return {-2, 0} end
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
local n = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
end
return {n, 0}
"""

# Gives back a slot `_RESERVE` took for an attempt that turned out right.
# KEYS: lock, failures; ARGV: the attempt's number, failure limit, failure window s
_RELEASE = """
if tonumber(ARGV[1]) >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], tonumber(ARGV[2]) - 1, 'EX', ARGV[3])
  return 1
end
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 0
"""

# KEYS: cooldown, number/hour, number/day, ip/day, global/day
# ARGV: cooldown s, then the four limits
_SMS = """
local ttl = redis.call('TTL', KEYS[1])
if ttl > 0 then return {1, ttl} end
local windows = {0, 3600, 86400, 86400, 86400}
for i = 2, 5 do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then
    local left = redis.call('TTL', KEYS[i])
    if left < 1 then left = windows[i] end
    return {i, left}
  end
end
if tonumber(ARGV[1]) > 0 then redis.call('SET', KEYS[1], '1', 'EX', ARGV[1]) end
for i = 2, 5 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], windows[i]) end
end
return {0, 0}
"""

SMS_LIMIT_NAMES = {1: "resend", 2: "number_hour", 3: "number_day", 4: "ip_day", 5: "global_day"}


@functools.cache
def _script(client: redis.Redis, source: str) -> Script:
    """`source` as a script object: run by its SHA1 (EVALSHA), loaded once per server."""
    return client.register_script(source)


class LockedOut(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class CodeExhausted(Exception):
    """This code had all its tries: a new one is needed."""


@dataclass(frozen=True)
class SmsRefusal:
    limit: str
    retry_after: int


def _unavailable(exc: Exception) -> ServiceUnavailable:
    logger.error("rate-limit store unreachable: %s", type(exc).__name__)
    # The counters' store away is an outage like any other: the same Retry-After as
    # `cache_unavailable` (README.md's 503 row tells apps to wait that long).
    return ServiceUnavailable(
        "service_unavailable",
        _("The service is temporarily unavailable. Try again shortly."),
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def reserve_attempt(
    scope: str,
    account: str,
    *,
    limit: int,
    lock_seconds: int,
    window_seconds: int,
    code_key: str = "",
    code_limit: int = 0,
) -> int:
    """Count one attempt before checking it; returns its number (1-based).

    Raises LockedOut while the account is locked (the attempt is not counted),
    CodeExhausted when the per-code budget is spent. Reaching `limit` locks the
    account for `lock_seconds`; `clear_failures` after a right answer undoes it.
    """
    lock_key = f"{PREFIX}:{scope}:lock:{account}"
    fail_key = f"{PREFIX}:{scope}:fail:{account}"
    tries_key = f"{PREFIX}:{scope}:tries:{code_key}" if code_key else f"{PREFIX}:none"
    client = get_redis()
    if client is None:
        return _reserve_in_cache(
            lock_key, fail_key, tries_key, limit, lock_seconds, window_seconds, code_limit
        )
    try:
        result = _script(client, _RESERVE)(
            keys=[lock_key, fail_key, tries_key],
            args=[
                limit,
                lock_seconds * 1000,
                window_seconds,
                code_limit if code_key else 0,
                max(settings.OTP_TTL_SECONDS * 2, 60),
            ],
        )
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc
    outcome, pttl = int(result[0]), int(result[1])
    if outcome == -1:
        raise LockedOut(max(1, -(-pttl // 1000)))
    if outcome == -2:
        raise CodeExhausted
    return outcome


def release_attempt(
    scope: str, account: str, *, attempt: int, limit: int, window_seconds: int
) -> None:
    """Give back the slot `reserve_attempt` took (it returned `attempt`) for an
    attempt that turned out right, so that only failures stay counted.

    Reserving before the check is what keeps concurrent attempts within the limit;
    the right ones are then released. When this attempt was the one that reached
    `limit` (and locked), the lock goes and the failures before it stay counted.
    """
    lock_key = f"{PREFIX}:{scope}:lock:{account}"
    fail_key = f"{PREFIX}:{scope}:fail:{account}"
    client = get_redis()
    if client is None:
        if attempt >= limit:
            cache.delete(lock_key)
            cache.set(fail_key, limit - 1, window_seconds)
        elif int(cache.get(fail_key) or 0) > 0:
            cache.decr(fail_key)
        return
    try:
        _script(client, _RELEASE)(keys=[lock_key, fail_key], args=[attempt, limit, window_seconds])
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc


def clear_failures(scope: str, account: str) -> None:
    keys = [f"{PREFIX}:{scope}:lock:{account}", f"{PREFIX}:{scope}:fail:{account}"]
    client = get_redis()
    if client is None:
        cache.delete_many(keys)
        return
    try:
        client.delete(*keys)
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc


def failure_count(scope: str, account: str) -> int:
    """Failures counted since the last success or lockout (for tests and admin)."""
    key = f"{PREFIX}:{scope}:fail:{account}"
    client = get_redis()
    if client is None:
        return int(cache.get(key) or 0)
    return int(client.get(key) or 0)


def lock_remaining(scope: str, account: str) -> int:
    """Seconds left on the account's lock (0 = not locked)."""
    key = f"{PREFIX}:{scope}:lock:{account}"
    client = get_redis()
    if client is None:
        return 0 if cache.get(key) is None else 1
    try:
        pttl = int(client.pttl(key))
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc
    return max(0, -(-pttl // 1000))


def take_sms_allowance(phone: str, ip: str, purpose: str) -> SmsRefusal | None:
    """Count one SMS to `phone` asked from `ip`, or say which limit refuses it.

    `ip` is counted by its network (`rate_limit_address`).

    The resend delay applies per number and flow (a sign-in right after a
    password reset is not held up); the hourly and daily caps per number.
    """
    keys = [
        f"{PREFIX}:sms:cooldown:{purpose}:{phone}",
        f"{PREFIX}:sms:hour:{phone}",
        f"{PREFIX}:sms:day:{phone}",
        f"{PREFIX}:sms:ip:{rate_limit_address(ip)}",
        f"{PREFIX}:sms:global",
    ]
    limits = [
        settings.SMS_PER_NUMBER_PER_HOUR,
        settings.SMS_PER_NUMBER_PER_DAY,
        settings.SMS_PER_IP_PER_DAY,
        settings.SMS_GLOBAL_PER_DAY,
    ]
    client = get_redis()
    if client is None:
        return _sms_in_cache(keys, limits)
    try:
        result = _script(client, _SMS)(keys=keys, args=[settings.SMS_RESEND_SECONDS, *limits])
    except redis.RedisError as exc:
        raise _unavailable(exc) from exc
    which, retry_after = int(result[0]), int(result[1])
    if which == 0:
        return None
    return SmsRefusal(SMS_LIMIT_NAMES[which], max(1, retry_after))


# --- embedded default (no Redis) ------------------------------------------------------


def _reserve_in_cache(
    lock_key: str,
    fail_key: str,
    tries_key: str,
    limit: int,
    lock_seconds: int,
    window_seconds: int,
    code_limit: int,
) -> int:
    if cache.get(lock_key) is not None:
        raise LockedOut(lock_seconds)
    if code_limit:
        cache.add(tries_key, 0, settings.OTP_TTL_SECONDS * 2)
        if int(cache.get(tries_key) or 0) >= code_limit:
            raise CodeExhausted
        cache.incr(tries_key)
    cache.add(fail_key, 0, window_seconds)
    count = int(cache.incr(fail_key))
    if count >= limit:
        cache.set(lock_key, 1, lock_seconds)
        cache.delete(fail_key)
    return count


def _sms_in_cache(keys: list[str], limits: list[int]) -> SmsRefusal | None:
    windows = [0, 3600, 86400, 86400, 86400]
    if cache.get(keys[0]) is not None:
        return SmsRefusal("resend", settings.SMS_RESEND_SECONDS)
    for index in range(1, 5):
        if int(cache.get(keys[index]) or 0) >= limits[index - 1]:
            return SmsRefusal(SMS_LIMIT_NAMES[index + 1], windows[index])
    if settings.SMS_RESEND_SECONDS > 0:
        cache.set(keys[0], 1, settings.SMS_RESEND_SECONDS)
    for index in range(1, 5):
        cache.add(keys[index], 0, windows[index])
        cache.incr(keys[index])
    return None
