"""backend/keys.py derives exactly the keys auth/keys.py and the agency code derived before.

The vectors below were made by the code this module replaced (HKDF-SHA256, salt
b"citizen-accounts" for accounts, no salt for agency credentials): stored OTP and
recovery-code hashes, TOTP secrets and agency secrets must keep verifying.
"""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken

from auth import totp
from backend.keys import ACCOUNTS_SALT, AGENCY_SALT, derive_key, keyed_hash
from dossiers.agency import credentials

SECRET_KEY = "key-vector-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
OTP_HASH = "59cc732a7cecada99522e6004bcf8e13276fe2893f605fe9f9b2ed8e8470b495"
RECOVERY_HASH = "52edfa7570c0513a3c9c8f4cc9a69e6ffeebd45217d7644ca7a30d82ef522b2b"
TOTP_TOKEN = (
    "gAAAAABrFLXh0AcFO2MPB_aOpnf0DVD-hNaE9iwB1dwI3ExcpAA0xKgLAsIU0NdiS15WCko-FNBoKc7uwUQJ"
    "jAmGhCKm1atb42lmekp3zBAWqg6uW4i4J3o="
)
AGENCY_TOKEN = (
    "gAAAAABrFLXhFvxeu8J5j9yibY40lKgvg3a6SjmsV1wxZg-qTXZdDCdxHO4tyLOEzOm6Pnrk3wxNEfe2uBKB"
    "VURidiPQUv1z2C6laPdXkxXj2CTBbaluLZo="
)


@pytest.fixture
def vector_key(settings) -> None:
    settings.SECRET_KEY = SECRET_KEY
    settings.SECRET_KEY_FALLBACKS = []


def test_account_code_hashes_are_unchanged(vector_key: None) -> None:
    otp = keyed_hash("accounts.otp", "challenge:login:+84912345678:123456", salt=ACCOUNTS_SALT)
    recovery = keyed_hash("accounts.recovery-code", "42:abcd2345", salt=ACCOUNTS_SALT)
    assert (otp, recovery) == (OTP_HASH, RECOVERY_HASH)


def test_totp_secret_encrypted_before_still_decrypts(vector_key: None) -> None:
    assert totp.decrypt_secret(TOTP_TOKEN) == "JBSWY3DPEHPK3PXP"


def test_agency_secret_encrypted_before_still_decrypts(vector_key: None) -> None:
    assert credentials.decrypt_secret(AGENCY_TOKEN) == "agency-secret-made-before"


def test_agency_secret_decrypts_under_a_fallback_key_while_rotating(settings) -> None:
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 50
    settings.SECRET_KEY_FALLBACKS = [SECRET_KEY]
    assert credentials.decrypt_secret(AGENCY_TOKEN) == "agency-secret-made-before"
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(InvalidToken):
        credentials.decrypt_secret(AGENCY_TOKEN)


def test_each_app_salt_gives_its_own_key() -> None:
    accounts = derive_key(SECRET_KEY, "agency-credential-secrets", ACCOUNTS_SALT)
    agency = derive_key(SECRET_KEY, "agency-credential-secrets", AGENCY_SALT)
    assert accounts != agency
    # A token made for the accounts' purpose does not open with the agency's key.
    with pytest.raises(InvalidToken):
        credentials.decrypt_secret(totp.encrypt_secret("JBSWY3DPEHPK3PXP"))
