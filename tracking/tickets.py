"""WebSocket tickets: short-lived, single-use, bound to one device session.

The app never puts its access token in a URL (URLs end up in proxy logs).
It trades the token for a random ticket (POST /api/v1/realtime/ticket) and
opens the socket with it. Only the ticket's hash is stored, in Redis, with a
TTL; redeeming is an atomic GETDEL, so two sockets can never share a ticket.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from backend.redis import get_redis

TICKET_BYTES = 32


@dataclass(frozen=True)
class TicketGrant:
    """What a redeemed ticket lets its bearer do."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    dossier_id: uuid.UUID | None


def ticket_ttl() -> int:
    return max(1, min(settings.WS_TICKET_TTL_SECONDS, 60))


def _key(ticket: str) -> str:
    digest = hashlib.sha256(ticket.encode()).hexdigest()
    return f"{settings.CACHE_KEY_PREFIX}:ws-ticket:{digest}"


def now() -> float:
    return time.time()


def issue_ticket(
    user_id: uuid.UUID, session_id: uuid.UUID, dossier_id: uuid.UUID | None = None
) -> str:
    """A new ticket for this session (raises redis errors when Redis is down)."""
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    ttl = ticket_ttl()
    value = json.dumps(
        {
            "user": str(user_id),
            "session": str(session_id),
            "dossier": str(dossier_id) if dossier_id else None,
            # Checked as well as the TTL, so a clock-skewed store cannot stretch it.
            "expires": now() + ttl,
        }
    )
    client = get_redis()
    if client is None:
        cache.set(_key(ticket), value, ttl)
    else:
        client.set(_key(ticket), value, ex=ttl)
    return ticket


def redeem_ticket(ticket: str) -> TicketGrant | None:
    """The grant of `ticket`, exactly once; None when unknown, used or expired."""
    if not ticket or len(ticket) > 128:
        return None
    client = get_redis()
    if client is None:
        # Embedded default only (one process): get-then-delete is good enough.
        raw = cache.get(_key(ticket))
        cache.delete(_key(ticket))
    else:
        raw = client.getdel(_key(ticket))
    if raw is None:
        return None
    data = json.loads(raw)
    if float(data["expires"]) <= now():
        return None
    return TicketGrant(
        user_id=uuid.UUID(data["user"]),
        session_id=uuid.UUID(data["session"]),
        dossier_id=uuid.UUID(data["dossier"]) if data["dossier"] else None,
    )


def count_issue(user_id: uuid.UUID) -> tuple[int, int]:
    """Count one ticket for the user this minute: (tickets so far, seconds left)."""
    window = int(now() // 60)
    key = f"ws-tickets:{user_id.hex}:{window}"
    cache.add(key, 0, 61)
    return cache.incr(key), 60 - int(now()) % 60
