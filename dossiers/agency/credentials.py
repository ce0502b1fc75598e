"""Agency credentials: create, rotate, retire; secrets encrypted at rest.

Secrets are stored encrypted (Fernet, key derived from SECRET_KEY by backend/keys.py)
because the server needs them back to compute the HMAC. A rotation keeps the previous
secret valid for AGENCY_PREVIOUS_SECRET_HOURS.
"""

from __future__ import annotations

import datetime as dt
import secrets

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.keys import AGENCY_SALT, fernet
from dossiers.models import Agency, AgencyCredential

_INFO = "agency-credential-secrets"


def encrypt_secret(secret: str) -> str:
    return fernet(_INFO, salt=AGENCY_SALT).encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    return fernet(_INFO, salt=AGENCY_SALT).decrypt(token.encode()).decode()


def create_credential(agency: Agency, label: str = "") -> tuple[AgencyCredential, str]:
    """A new key for `agency`. The secret is returned once and never shown again."""
    secret = secrets.token_urlsafe(32)
    credential = AgencyCredential.objects.create(
        agency=agency,
        key_id=f"ak_{secrets.token_hex(8)}",
        label=label,
        secret_encrypted=encrypt_secret(secret),
    )
    return credential, secret


@transaction.atomic
def rotate_credential(credential: AgencyCredential) -> str:
    """Issue a new secret; the current one stays valid for the grace period."""
    locked = AgencyCredential.objects.select_for_update().get(pk=credential.pk)
    secret = secrets.token_urlsafe(32)
    now = timezone.now()
    locked.previous_secret_encrypted = locked.secret_encrypted
    locked.previous_valid_until = now + dt.timedelta(hours=settings.AGENCY_PREVIOUS_SECRET_HOURS)
    locked.secret_encrypted = encrypt_secret(secret)
    locked.rotated_at = now
    locked.save()
    credential.refresh_from_db()
    return secret


def retire_previous_secret(credential: AgencyCredential) -> None:
    AgencyCredential.objects.filter(pk=credential.pk).update(
        previous_secret_encrypted="",  # nosec B106 # clearing the secret, not setting one
        previous_valid_until=None,
    )


def valid_secrets(credential: AgencyCredential, now: dt.datetime) -> list[str]:
    """The secrets that sign for `credential` at `now`: current, and previous in its grace."""
    tokens = [credential.secret_encrypted]
    if (
        credential.previous_secret_encrypted
        and credential.previous_valid_until
        and credential.previous_valid_until > now
    ):
        tokens.append(credential.previous_secret_encrypted)
    result = []
    for token in tokens:
        try:
            result.append(decrypt_secret(token))
        except InvalidToken:  # encrypted under a key no longer configured
            continue
    return result
