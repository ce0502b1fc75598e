"""The lookup secret printed on a dossier's receipt (giấy tiếp nhận).

Anyone holding the receipt may check the dossier's progress with its code and
this secret, without signing in (`tracking.lookup`). Issued once, at submission
(`dossiers.actions.submit_dossier`).

Two copies are kept, for two different jobs:

- `lookup_secret_hash`: salted PBKDF2-SHA256, what a lookup is checked against.
  It does not depend on SECRET_KEY, so rotating that key never invalidates a
  printed receipt, and a stolen database does not give the secrets away cheaply.
- `lookup_secret_encrypted`: Fernet, key derived from SECRET_KEY (and its
  fallbacks), so the owner can see the secret again (app screen, receipt PDF).
  A random secret stored encrypted was chosen over deriving it as
  HMAC(SECRET_KEY, dossier id): derivation would change every secret ever printed
  when SECRET_KEY rotates, while MultiFernet keeps decrypting under the
  fallbacks; and a random secret is not tied to a key that also signs tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from dossiers.models import Dossier

# No 0/O, 1/I/L, U: easy to read off paper and to type.
ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
_ALGORITHM = "pbkdf2_sha256"


def new_secret() -> str:
    length = settings.LOOKUP_SECRET_LENGTH
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def display(secret: str) -> str:
    """`ABCDEFGHJK` as `ABCDE-FGHJK`: easier to copy by hand."""
    half = (len(secret) + 1) // 2
    return f"{secret[:half]}-{secret[half:]}"


def normalise(given: str) -> str:
    """What a person typed: case, spaces and dashes do not matter."""
    return "".join(ch for ch in given.upper() if ch not in " -\t")


def hash_secret(secret: str, *, salt: str | None = None, iterations: int | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    iterations = iterations or settings.LOOKUP_SECRET_HASH_ITERATIONS
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), iterations)
    return f"{_ALGORITHM}${iterations}${salt}${digest.hex()}"


def secret_matches(stored_hash: str | None, given: str) -> bool:
    """Constant-time check; an empty or unknown hash costs the same work as a real one."""
    target = stored_hash or ""
    parts = target.split("$")
    iterations = int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else 0
    if parts[0] != _ALGORITHM or iterations < 1:
        # Same cost as a real check, then a sure "no".
        hash_secret(normalise(given), salt="0" * 16)
        return False
    computed = hash_secret(normalise(given), salt=parts[2], iterations=iterations)
    return hmac.compare_digest(computed.encode(), target.encode())


def _fernet_for(secret_key: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"dossier-lookup-secrets"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return MultiFernet([_fernet_for(key) for key in keys])


def issue_lookup_secret(dossier: Dossier) -> str:
    """Give `dossier` a new secret (the caller saves the two fields); returns it."""
    secret = new_secret()
    dossier.lookup_secret_hash = hash_secret(secret)
    dossier.lookup_secret_encrypted = _fernet().encrypt(secret.encode()).decode()
    return secret


def reveal_lookup_secret(dossier: Dossier) -> str | None:
    """The secret for its owner's eyes; None if the dossier has none (or the key is gone)."""
    if not dossier.lookup_secret_encrypted:
        return None
    try:
        return _fernet().decrypt(dossier.lookup_secret_encrypted.encode()).decode()
    except InvalidToken:  # encrypted under a key no longer configured
        return None
