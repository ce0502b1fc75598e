"""Device session tokens: what they are and how a request's token is checked.

- The access token is a signed, timestamped reference to a device session,
  valid ACCESS_TOKEN_TTL_SECONDS (at most 15 minutes). Every request re-reads the
  session, so revoking it takes effect at once. Each one carries a random nonce:
  two tokens issued in the same second differ. A refresh does not end the previous
  access token (it lives out its lifetime, like any bearer token nobody revoked);
  ending the session does (the contract in mobile_api_docs/accounts.md).
- The refresh token is random, stored hashed and usable once: refreshing returns
  a new pair. Presenting an already-used refresh token means it was stolen (or
  replayed): the whole session is revoked, except for a retry of the same exchange
  within REFRESH_TOKEN_RETRY_SECONDS, which gets the same pair back while that pair
  is unspent (auth/actions/sessions.py `refresh_tokens`).
- A session lives SESSION_MAX_AGE_DAYS from its sign-in at most, however often it is
  refreshed (`session_ends_at`): past it, neither its refresh nor its access tokens
  work (`session_expired`) and its sockets are refused. It is not revoked: its
  device stays known, and the password alone signs it in again.

Starting, refreshing and ending sessions are actions (auth/actions/sessions.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db.models import Q
from django.utils import timezone

from auth.models import DeviceSession
from backend.joined_read import JoinedRead

ACCESS_SALT = "accounts.access-token"
# Read on every authenticated request: the session and its user (every column of
# both, as `select_related("user")` reads them) in one query whose SQL is compiled
# once per process, not on every request (backend/joined_read.py).
_SESSIONS_WITH_USER = JoinedRead(DeviceSession, related={"user": None})
LAST_SEEN_PRECISION = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    # Given once, when a device signs in: the app keeps it in secure storage and
    # sends it with its next sign-in to prove it is the same installation.
    device_key: str = ""


class TokenError(Exception):
    """The token is not valid; `reason` says why (for logs and error codes)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def access_ttl() -> int:
    return min(settings.ACCESS_TOKEN_TTL_SECONDS, 15 * 60)


def session_ends_at(session: DeviceSession) -> dt.datetime:
    """The end of `session`'s absolute lifetime (SESSION_MAX_AGE_DAYS from its sign-in)."""
    return session.created_at + dt.timedelta(days=settings.SESSION_MAX_AGE_DAYS)


def session_expired(session: DeviceSession, now: dt.datetime) -> bool:
    return now >= session_ends_at(session)


def signed_in_since() -> dt.datetime:
    """Sessions that signed in after this moment have not reached their max age
    (`created_at__gt` of a query, as `session_expired` reads it)."""
    return timezone.now() - dt.timedelta(days=settings.SESSION_MAX_AGE_DAYS)


def live_session(prefix: str = "") -> Q:
    """The condition of a session not ended, neither revoked nor past its max age, on
    the session's own columns or (`prefix`, e.g. "session__") across a relation."""
    return Q(**{f"{prefix}revoked_at": None, f"{prefix}created_at__gt": signed_in_since()})


def expires_in(session: DeviceSession, issued_at: dt.datetime, now: dt.datetime) -> int:
    """Seconds left at `now` to an access token of `session` issued at `issued_at`:
    what is left of its own lifetime, or less when the session ends first (at least 1)."""
    ends = min(issued_at + dt.timedelta(seconds=access_ttl()), session_ends_at(session))
    return max(1, int((ends - now).total_seconds()))


def access_token_for(session_id: uuid.UUID) -> str:
    """A new access token of the session (valid for `access_ttl()` seconds)."""
    claims = {"sid": str(session_id), "n": secrets.token_urlsafe(6)}
    return signing.dumps(claims, salt=ACCESS_SALT, compress=False)


def hash_device_key(device_key: str) -> str:
    return hash_token(device_key)


def authenticate_access_token(token: str) -> DeviceSession:
    """The live session behind an access token, or TokenError."""
    try:
        data = signing.loads(token, salt=ACCESS_SALT, max_age=access_ttl())
        session_id = uuid.UUID(str(data["sid"]))
    except signing.SignatureExpired as exc:
        raise TokenError("expired") from exc
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise TokenError("invalid") from exc
    try:
        session = _SESSIONS_WITH_USER.get(pk=session_id)
    except DeviceSession.DoesNotExist as exc:
        raise TokenError("revoked") from exc
    if session.revoked_at is not None or not session.user.is_active:
        raise TokenError("revoked")
    now = timezone.now()
    if session_expired(session, now):
        raise TokenError("session_expired")
    if now - session.last_seen_at > LAST_SEEN_PRECISION:
        DeviceSession.objects.filter(pk=session.pk).update(last_seen_at=now)
        session.last_seen_at = now
    return session


def recently_authenticated(session: DeviceSession) -> bool:
    window = dt.timedelta(hours=settings.REAUTH_WINDOW_HOURS)
    return timezone.now() - session.authenticated_at <= window
