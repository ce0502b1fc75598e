"""Recovery codes: RECOVERY_CODE_COUNT single-use codes of 80 bits each.

Shown once when made; only a keyed hash is stored. Making, spending and
dropping them are actions (auth/actions/second_factor.py); spending one is a
conditional UPDATE, so a code works exactly once even under concurrent use.
"""

from __future__ import annotations

import base64
import secrets

from auth.models import RecoveryCode, User
from backend.keys import ACCOUNTS_SALT, keyed_hash

_INFO = "accounts.recovery-code"


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_code(user: User, code: str) -> str:
    return keyed_hash(_INFO, f"{user.pk}:{normalise_code(code)}", salt=ACCOUNTS_SALT)


def new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode()  # 16 characters, 80 bits
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def remaining(user: User) -> int:
    """How many of the user's recovery codes are still unspent."""
    return RecoveryCode.objects.filter(user=user, used_at=None).count()
