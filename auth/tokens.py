"""Device sessions and their tokens.

- The access token is a signed, timestamped reference to a device session,
  valid ACCESS_TOKEN_TTL_SECONDS (at most 15 minutes). Every request re-reads the
  session, so revoking it takes effect at once.
- The refresh token is random, stored hashed and usable once: refreshing returns
  a new pair. Presenting an already-used refresh token means it was stolen (or
  replayed): the whole session is revoked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from auth.models import DeviceSession, RefreshToken, User
from backend.realtime import notify_sessions_revoked

ACCESS_SALT = "accounts.access-token"
# Read on every authenticated request; built once (lazy; `get()` works on a copy).
_SESSIONS_WITH_USER = DeviceSession.objects.select_related("user")
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


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def access_ttl() -> int:
    return min(settings.ACCESS_TOKEN_TTL_SECONDS, 15 * 60)


def access_token_for(session_id: uuid.UUID) -> str:
    """A new access token of the session (valid for `access_ttl()` seconds)."""
    return signing.dumps({"sid": str(session_id)}, salt=ACCESS_SALT, compress=False)


def _issue_pair(session: DeviceSession) -> TokenPair:
    access = access_token_for(session.id)
    refresh = f"{session.id.hex}.{secrets.token_urlsafe(32)}"
    RefreshToken.objects.create(
        session=session,
        token_hash=_hash(refresh),
        expires_at=timezone.now() + dt.timedelta(days=settings.REFRESH_TOKEN_TTL_DAYS),
    )
    return TokenPair(access, refresh, access_ttl(), session.id)


def hash_device_key(device_key: str) -> str:
    return _hash(device_key)


def start_session(
    user: User,
    *,
    device_id: str,
    name: str = "",
    platform: str = DeviceSession.Platform.OTHER,
    app_version: str = "",
    ip: str | None = None,
) -> tuple[DeviceSession, TokenPair]:
    """Sign `user` in on a device. A device signs in once: its older session ends."""
    now = timezone.now()
    device_key = secrets.token_urlsafe(32)
    # No savepoint inside the caller's transaction: nothing here is retried on error.
    with transaction.atomic(savepoint=False):
        DeviceSession.objects.filter(user=user, device_id=device_id, revoked_at=None).update(
            revoked_at=now, revoked_reason="replaced"
        )
        session = DeviceSession.objects.create(
            user=user,
            device_id=device_id,
            name=name,
            platform=platform,
            app_version=app_version,
            ip=ip,
            last_seen_at=now,
            authenticated_at=now,
            device_key_hash=_hash(device_key),
        )
        pair = _issue_pair(session)
        return session, TokenPair(
            pair.access_token, pair.refresh_token, pair.expires_in, pair.session_id, device_key
        )


def refresh(refresh_token: str) -> TokenPair:
    """Rotate: spend `refresh_token` and return a new pair for the same session."""
    now = timezone.now()
    with transaction.atomic():
        token = (
            RefreshToken.objects.select_for_update()
            .select_related("session", "session__user")
            .filter(token_hash=_hash(refresh_token))
            .first()
        )
        if token is None:
            raise TokenError("unknown")
        session = token.session
        reused = token.used_at is not None
        if not reused:
            if session.revoked_at is not None or not session.user.is_active:
                raise TokenError("revoked")
            if token.expires_at <= now:
                raise TokenError("expired")
            token.used_at = now
            token.save(update_fields=["used_at"])
            DeviceSession.objects.filter(pk=session.pk).update(last_seen_at=now)
            return _issue_pair(session)
    # A spent token came back: someone else holds the chain. End it (committed
    # here, outside the block, so raising does not roll the revocation back).
    revoke_session(session, reason="refresh_reuse")
    raise TokenError("reused")


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
        # By key only, get() not first(): the least to compile on every request.
        session = _SESSIONS_WITH_USER.get(pk=session_id)
    except DeviceSession.DoesNotExist as exc:
        raise TokenError("revoked") from exc
    if session.revoked_at is not None or not session.user.is_active:
        raise TokenError("revoked")
    now = timezone.now()
    if now - session.last_seen_at > LAST_SEEN_PRECISION:
        DeviceSession.objects.filter(pk=session.pk).update(last_seen_at=now)
        session.last_seen_at = now
    return session


def peek_user_id(request: HttpRequest) -> str | None:
    """The user id an access token names, without the session check (for scoping only)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        data = signing.loads(token.strip(), salt=ACCESS_SALT, max_age=access_ttl())
        session = (
            DeviceSession.objects.filter(pk=uuid.UUID(str(data["sid"]))).only("user_id").first()
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return str(session.user_id) if session else None


def revoke_session(session: DeviceSession, *, reason: str) -> None:
    """End one session: its tokens stop working on the next request, its sockets close."""
    DeviceSession.objects.filter(pk=session.pk, revoked_at=None).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )
    session.revoked_at = session.revoked_at or timezone.now()
    notify_sessions_revoked([session.pk])


def revoke_all_sessions(user: User, *, reason: str) -> int:
    live = DeviceSession.objects.filter(user=user, revoked_at=None)
    session_ids = list(live.values_list("pk", flat=True))
    count = live.filter(pk__in=session_ids).update(revoked_at=timezone.now(), revoked_reason=reason)
    notify_sessions_revoked(session_ids)
    return count


def recently_authenticated(session: DeviceSession) -> bool:
    window = dt.timedelta(hours=settings.REAUTH_WINDOW_HOURS)
    return timezone.now() - session.authenticated_at <= window
