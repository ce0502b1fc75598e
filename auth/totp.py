"""Authenticator-app codes (RFC 6238 TOTP, 30-second steps, 6 digits).

The secret (160 bits) is encrypted at rest with a key derived from SECRET_KEY.
A code is accepted for the current step or one step either side (clock drift),
and each step at most once: the last accepted step is stored and advanced with
a conditional UPDATE, so two requests racing with the same code cannot both win.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import io

import pyotp
import qrcode
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from auth.models import User
from backend.keys import ACCOUNTS_SALT, fernet

STEP_SECONDS = 30
DRIFT_STEPS = 1
SECRET_LENGTH = 32  # base32 characters: 32 x 5 bits = 160 bits
_INFO = "accounts.totp-secret"


def new_secret() -> str:
    return pyotp.random_base32(length=SECRET_LENGTH)


def encrypt_secret(secret: str) -> str:
    return fernet(_INFO, salt=ACCOUNTS_SALT).encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    return fernet(_INFO, salt=ACCOUNTS_SALT).decrypt(token.encode()).decode()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.phone, issuer_name=settings.TOTP_ISSUER)


def qr_png_base64(uri: str) -> str:
    image = qrcode.make(uri, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def time_step(moment: dt.datetime | None = None) -> int:
    return int((moment or timezone.now()).timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, moment: dt.datetime | None = None) -> int | None:
    """The step within the drift window whose code is `code`, else None."""
    code = code.strip()
    if len(code) != 6 or not (code.isascii() and code.isdigit()):  # "١٢٣٤٥٦" is digits too
        return None
    totp = pyotp.TOTP(secret)
    now_step = time_step(moment)
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        # Compare every candidate (no early exit) in constant time.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def accept_code(user: User, code: str, *, secret: str | None = None) -> bool:
    """True once per step for a right code; replays of a spent step are refused."""
    if secret is None:
        if not user.totp_secret:
            return False
        secret = decrypt_secret(user.totp_secret)
    step = matching_step(secret, code)
    if step is None:
        return False
    advanced = (
        User.objects.filter(pk=user.pk)
        .filter(Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step))
        .update(totp_last_step=step)
    )
    if advanced:
        user.totp_last_step = step
    return advanced == 1
