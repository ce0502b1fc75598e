"""Recovery codes: RECOVERY_CODE_COUNT single-use codes of 80 bits each.

Shown once when made; only a keyed hash is stored. Spending one is a
conditional UPDATE, so a code works exactly once even under concurrent use.
"""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django.utils import timezone

from auth.models import RecoveryCode, User
from backend.keys import ACCOUNTS_SALT, keyed_hash

_INFO = "accounts.recovery-code"


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _hash(user: User, code: str) -> str:
    return keyed_hash(_INFO, f"{user.pk}:{_normalise(code)}", salt=ACCOUNTS_SALT)


def _new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode()  # 16 characters, 80 bits
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def generate(user: User) -> list[str]:
    """Replace the user's codes with a new set and return it (the only time it is seen)."""
    codes = [_new_code() for _ in range(settings.RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        [RecoveryCode(user=user, code_hash=_hash(user, code)) for code in codes]
    )
    return codes


def use(user: User, code: str) -> bool:
    if not _normalise(code):
        return False
    spent = RecoveryCode.objects.filter(
        user=user, code_hash=_hash(user, code), used_at=None
    ).update(used_at=timezone.now())
    return spent == 1


def remaining(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at=None).count()


def invalidate(user: User) -> None:
    RecoveryCode.objects.filter(user=user).delete()
