"""Device sessions: signing a device in, rotating its tokens, signing it out.

A device signs in once: a new sign-in on the same device ends its older
session. Ending a session takes effect on the next request and closes its
sockets once the transaction commits (backend.realtime).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from auth.access import access_session
from auth.actions.challenges import spend_open_challenges
from auth.models import DeviceSession, RefreshToken, User
from auth.tokens import (
    TokenError,
    TokenPair,
    access_token_for,
    expires_in,
    hash_token,
    session_expired,
)
from backend.realtime import notify_sessions_revoked


def _issue_pair(session: DeviceSession) -> TokenPair:
    now = timezone.now()
    access = access_token_for(session.id)
    refresh = f"{session.id.hex}.{secrets.token_urlsafe(32)}"
    RefreshToken.objects.create(
        session=session,
        token_hash=hash_token(refresh),
        expires_at=now + dt.timedelta(days=settings.REFRESH_TOKEN_TTL_DAYS),
    )
    # The access token works until its own expiry or the session's, whichever is first.
    return TokenPair(access, refresh, expires_in(session, now, now), session.id)


def start_session(
    user: User,
    *,
    device_id: str,
    name: str = "",
    platform: str = DeviceSession.Platform.OTHER,
    app_version: str = "",
    ip: str | None = None,
    second_factor: str = "",
    auth_method: str = "",
    national_level: int = 0,
) -> tuple[DeviceSession, TokenPair]:
    """Sign `user` in on a device. A device signs in once: its older session ends.

    `second_factor` names the factor checked at this sign-in besides the password
    (empty when none was), kept on the session for the rules that need a strong one.
    `auth_method` records how the user proved who they are (AuthMethod); a national
    sign-in also records its identity level and time (step-up checks read them).
    """
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
            second_factor=second_factor,
            second_factor_at=now if second_factor else None,
            auth_method=auth_method,
            national_level=national_level,
            national_authenticated_at=now if national_level else None,
            device_key_hash=hash_token(device_key),
        )
        pair = _issue_pair(session)
        return session, TokenPair(
            pair.access_token, pair.refresh_token, pair.expires_in, pair.session_id, device_key
        )


def refresh_tokens(refresh_token: str) -> TokenPair:
    """Rotate: spend `refresh_token` and return a new pair for the same session.

    A retry of the same exchange (the answer was lost on a flaky network, or the app
    refreshed from two requests at once) within REFRESH_TOKEN_RETRY_SECONDS, while
    the pair it was exchanged for is still unspent, gets that same pair back. Any
    other spent token coming back means someone else holds the chain: the session
    ends. (A copy replayed within the window gets the same pair as the owner; the
    first of them to spend it leaves the other holding a spent token, which then
    ends the session.)

    Past the session's absolute lifetime (SESSION_MAX_AGE_DAYS from its sign-in, auth/
    tokens.py) no pair is given, a retried one neither: `session_expired`. That is no
    revocation: the device stays known (its key still vouches for it at sign-in)."""
    now = timezone.now()
    with transaction.atomic():
        token = (
            RefreshToken.objects.select_for_update()
            .select_related("session", "session__user")
            .filter(token_hash=hash_token(refresh_token))
            .first()
        )
        if token is None:
            raise TokenError("unknown")
        session = token.session
        if token.used_at is None:
            if session.revoked_at is not None or not session.user.is_active:
                raise TokenError("revoked")
            if session_expired(session, now):
                raise TokenError("session_expired")
            if token.expires_at <= now:
                raise TokenError("expired")
            pair = _issue_pair(session)
            token.used_at = now
            token.successor_sealed = _seal(refresh_token, token.token_hash, pair)
            token.save(update_fields=["used_at", "successor_sealed"])
            DeviceSession.objects.filter(pk=session.pk).update(last_seen_at=now)
            return pair
        retried = _retried_pair(refresh_token, token, now)
        if retried is not None:
            # The owner's retry (not a reuse), but the session ended since the exchange.
            if session_expired(session, now):
                raise TokenError("session_expired")
            return retried
    # A spent token came back: someone else holds the chain. End it (committed
    # here, outside the block, so raising does not roll the revocation back).
    revoke_session(session, reason="refresh_reuse")
    raise TokenError("reused")


def _retry_key(refresh_token: str) -> bytes:
    # Derived from the token itself, which is never stored: the database alone
    # (its stored hash is SHA-256 of the token, not this) cannot open the pair.
    return hmac.new(refresh_token.encode(), b"refresh-retry", hashlib.sha256).digest()


def _seal(refresh_token: str, token_hash: str, pair: TokenPair) -> bytes | None:
    if settings.REFRESH_TOKEN_RETRY_SECONDS <= 0:
        return None
    nonce = secrets.token_bytes(12)
    plain = json.dumps({"access": pair.access_token, "refresh": pair.refresh_token}).encode()
    return nonce + AESGCM(_retry_key(refresh_token)).encrypt(nonce, plain, token_hash.encode())


def _retried_pair(refresh_token: str, token: RefreshToken, now: dt.datetime) -> TokenPair | None:
    """The pair `token` was exchanged for, if this is a retry the window allows."""
    window = dt.timedelta(seconds=settings.REFRESH_TOKEN_RETRY_SECONDS)
    sealed = token.successor_sealed
    if not sealed or token.used_at is None or now - token.used_at > window:
        return None
    session = token.session
    if session.revoked_at is not None or not session.user.is_active:
        return None
    sealed = bytes(sealed)
    try:
        plain = AESGCM(_retry_key(refresh_token)).decrypt(
            sealed[:12], sealed[12:], token.token_hash.encode()
        )
    except InvalidTag:
        return None
    pair = json.loads(plain)
    successor_unspent = RefreshToken.objects.filter(
        session=session, token_hash=hash_token(pair["refresh"]), used_at=None
    ).exists()
    if not successor_unspent:
        return None
    # The access token was issued at `used_at`: what is left of its lifetime.
    left = expires_in(session, token.used_at, now)
    return TokenPair(pair["access"], pair["refresh"], left, session.id)


def revoke_session(session: DeviceSession, *, reason: str) -> None:
    """End one session: its tokens stop working on the next request, its sockets close."""
    DeviceSession.objects.filter(pk=session.pk, revoked_at=None).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )
    session.revoked_at = session.revoked_at or timezone.now()
    notify_sessions_revoked([session.pk])


def revoke_all_sessions(user: User, *, reason: str, keep: DeviceSession | None = None) -> int:
    """End every session of `user` (but `keep`): tokens stop at once, sockets close.

    Every device they or earlier sessions signed in on is forgotten: no session but
    `keep` vouches for its device any more (auth/actions/sign_in.py `_known_device`),
    not even one that had already ended by a plain logout, whose device key an old
    phone may still hold."""
    live = DeviceSession.objects.filter(user=user, revoked_at=None)
    if keep is not None:
        live = live.exclude(pk=keep.pk)
    session_ids = list(live.values_list("pk", flat=True))
    count = live.filter(pk__in=session_ids).update(revoked_at=timezone.now(), revoked_reason=reason)
    known = DeviceSession.objects.filter(user=user).exclude(device_key_hash="")
    if keep is not None:
        known = known.exclude(pk=keep.pk)
    known.update(device_key_hash="")
    notify_sessions_revoked(session_ids)
    return count


def end_sign_ins(user: User, *, reason: str, keep: DeviceSession | None = None) -> int:
    """A security event (password changed or reset, number changed, support reset,
    logout everywhere):
    every session but `keep` ends, and every sign-in in progress with them
    (`spend_open_challenges`). Every device but `keep`'s needs the second step again,
    those of sessions ended before too (`revoke_all_sessions`). Returns the sessions
    ended."""
    spend_open_challenges(user)
    return revoke_all_sessions(user, reason=reason, keep=keep)


def logout(*, session: DeviceSession) -> None:
    revoke_session(session, reason="logout")


def logout_everywhere(*, user: User) -> int:
    """The owner signs out every device (suspecting someone, say): sign-ins in
    progress end too, as on the other security events (`end_sign_ins`)."""
    return end_sign_ins(user, reason="logout_all")


def revoke_own_session(*, user: User, session_id: uuid.UUID) -> None:
    revoke_session(access_session(user, session_id), reason="revoked_by_user")
