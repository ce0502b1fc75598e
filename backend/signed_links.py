"""Short-lived signed tokens for links that work without an access token.

An image view, a PDF viewer or an agency's downloader cannot add headers, so the
link itself carries the grant: a payload signed with SECRET_KEY (django.core.signing,
so key rotation through SECRET_KEY_FALLBACKS works), a `purpose` (the signing salt:
a token made for one use is refused by every other) and an age limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core import signing

from backend.errors import ApiError, NotFound


def sign_link(payload: dict[str, Any], *, purpose: str) -> str:
    return signing.dumps(payload, salt=purpose)


def link_signer(purpose: str) -> Callable[[dict[str, Any]], str]:
    """`sign_link` for many links of one purpose (a page of them): one signer for all."""
    signer = signing.TimestampSigner(salt=purpose)
    return signer.sign_object


def open_link(
    token: str, *, purpose: str, max_age: int, expired: Callable[[], ApiError]
) -> dict[str, Any]:
    """The payload `token` carries; `expired()` once older than `max_age` s, 404 if forged."""
    try:
        payload = signing.loads(token, salt=purpose, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise expired() from exc
    except signing.BadSignature as exc:
        raise NotFound() from exc
    if not isinstance(payload, dict):
        raise NotFound()
    return payload
