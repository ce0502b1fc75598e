"""Short-lived signed tokens for links that work without an access token.

An image view, a PDF viewer or an agency's downloader cannot add headers, so the
link itself carries the grant: a payload signed with SECRET_KEY (django.core.signing,
so key rotation through SECRET_KEY_FALLBACKS works), a `purpose` (the signing salt:
a token made for one use is refused by every other) and an age limit.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from django.core import signing
from django.utils.encoding import force_bytes

from backend.errors import ApiError, NotFound


def sign_link(payload: dict[str, Any], *, purpose: str) -> str:
    return signing.dumps(payload, salt=purpose)


# django.core.signing.JSONSerializer's text, from one encoder made once.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


class PageSigner(signing.TimestampSigner):
    """`sign_link` for the many links of one page: the same tokens `sign_link` would
    make at the moment the signer was made (tests/backend/test_signed_links.py), at
    about half the cost each (a feed page signs 500).

    Django's TimestampSigner, with what it would work out again for each link worked
    out once: the HMAC key it derives from the salt and SECRET_KEY, and the timestamp.
    Every link of a page is as old as the page: `signed_at`, whole Unix seconds, so
    they all open until `expires_at(max_age)` and no later.
    """

    def __init__(self, purpose: str) -> None:
        super().__init__(salt=purpose)
        hasher = getattr(hashlib, self.algorithm)
        # django.utils.crypto.salted_hmac's key, as Signer.signature salts it.
        self._hmac_key = hasher(force_bytes(self.salt) + b"signer" + force_bytes(self.key)).digest()
        # Keyed once: each link copies it (hmac.digest would key a new one per link).
        self._keyed = hmac.new(self._hmac_key, digestmod=hasher)
        self.signed_at = int(time.time())
        self._stamp = signing.b62_encode(self.signed_at)
        self._sep = self.sep.encode("ascii")
        self._tail = self._sep + self._stamp.encode("ascii")

    def expires_at(self, max_age: int) -> dt.datetime:
        """The last moment `open_link(..., max_age=max_age)` opens this page's links."""
        return dt.datetime.fromtimestamp(self.signed_at + max_age, tz=dt.UTC)

    def timestamp(self) -> str:
        return self._stamp

    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        if key is not None:
            return super().signature(value, key)
        digest = hmac.digest(self._hmac_key, force_bytes(value), self.algorithm)
        return signing.b64_encode(digest).decode()

    def sign_link(self, payload: dict[str, Any]) -> str:
        return self.sign_json(_COMPACT_JSON.encode(payload))

    def sign_json(self, text: str) -> str:
        """The link of a payload already written as `signing.dumps` writes it (compact
        JSON, ASCII only): `sign_object`'s steps without its generic ones (a serializer
        made per call, the compression test), and `signing.b64_encode`'s base64 done by
        `binascii` itself, from an HMAC keyed once per page: a feed page signs 500."""
        value = _b64(text.encode("ascii")) + self._tail
        keyed = self._keyed.copy()
        keyed.update(value)
        return (value + self._sep + _b64(keyed.digest())).decode("ascii")


# signing.b64_encode: URL-safe base64 without its padding.
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


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
