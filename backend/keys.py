"""Keys derived from SECRET_KEY: the one key-derivation module of the project.

Each use gets its own key (HKDF-SHA256 with a distinct `info`, the purpose, and
the `salt` of the app that owns it), so a leak of one derived key reveals nothing
about SECRET_KEY or the others. Old keys listed in SECRET_KEY_FALLBACKS still
decrypt while a new SECRET_KEY is rolled out.

The salts are fixed forever: changing one changes every derived key, and the
stored hashes and encrypted secrets made under it stop verifying.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Citizen accounts (auth): OTP and recovery-code hashes, TOTP secrets.
ACCOUNTS_SALT: bytes | None = b"citizen-accounts"
# Agency credentials (dossiers.agency): derived without a salt (HKDF's zero salt).
AGENCY_SALT: bytes | None = None


# A handful of (secret, use) pairs per process: derived once, not on every code checked.
@functools.lru_cache(maxsize=32)
def derive_key(secret: str, info: str, salt: bytes | None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info.encode()).derive(
        secret.encode()
    )


def keyed_hash(info: str, message: str, *, salt: bytes | None) -> str:
    """HMAC-SHA256 of `message` under the key derived for `info` (hex).

    One keyed hash, not a slow password hash: the codes it protects are short-lived
    and their tries are counted (auth/ratelimit.py), and the key never leaves the
    server, so a stolen table cannot be brute-forced offline without it.
    """
    key = derive_key(settings.SECRET_KEY, info, salt)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def fernet(info: str, *, salt: bytes | None) -> MultiFernet:
    """Encryption under SECRET_KEY's derived key, decrypting under the fallbacks' too."""
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(derive_key(secret, info, salt))) for secret in secrets]
    )
