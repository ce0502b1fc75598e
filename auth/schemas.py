"""Request and response bodies of /api/v1/auth."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from ninja import Schema
from pydantic import Field

from auth.actions.sign_in import DeviceInfo

Platform = Literal["android", "ios", "web", "other"]
SecondFactor = Literal["sms_otp", "totp", "recovery_code"]


class DeviceIn(Schema):
    device_id: str = Field(
        ..., min_length=1, max_length=128, description="Installation id, stable per install"
    )
    device_name: str = Field("", max_length=100, description="e.g. 'iPhone của Lan'")
    platform: Platform = "other"
    app_version: str = Field("", max_length=32)
    device_key: str = Field(
        "",
        max_length=128,
        description="The `device_key` this installation received at its last sign-in. "
        "With it, signing in again on this device needs no second step.",
    )

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            device_id=self.device_id,
            name=self.device_name,
            platform=self.platform,
            app_version=self.app_version,
            device_key=self.device_key,
        )


class RegisterIn(Schema):
    phone: str = Field(..., max_length=32, description="Vietnamese mobile, e.g. 0912345678")
    full_name: str = Field(..., min_length=1, max_length=150)
    password: str = Field(..., min_length=1, max_length=128)


class ChallengeOut(Schema):
    challenge_id: uuid.UUID
    expires_in: int = Field(..., description="Seconds the code stays valid")
    resend_after: int = Field(..., description="Seconds before another code may be asked")


class CodeVerifyIn(DeviceIn):
    challenge_id: uuid.UUID
    code: str = Field(..., min_length=1, max_length=32)


class ResendIn(Schema):
    challenge_id: uuid.UUID


class TokenOut(Schema):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(..., description="Seconds the access token is valid")
    session_id: uuid.UUID
    device_key: str | None = Field(
        None,
        description="Given when a device signs in (not on refresh): keep it in secure "
        "storage and send it with the next login from this installation.",
    )


class LoginIn(DeviceIn):
    phone: str = Field(..., max_length=32)
    password: str = Field(..., min_length=1, max_length=128)
    second_factor: SecondFactor = Field(
        "sms_otp",
        description="On a new device: `totp` or `recovery_code` to skip the SMS",
    )


class LoginOut(Schema):
    second_factor_required: bool
    challenge_id: uuid.UUID | None = None
    methods: list[SecondFactor] | None = None
    expires_in: int | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    token_type: str | None = None
    session_id: uuid.UUID | None = None
    device_key: str | None = None


class LoginVerifyIn(Schema):
    challenge_id: uuid.UUID
    method: SecondFactor = "sms_otp"
    code: str = Field(..., min_length=1, max_length=32)


class RefreshIn(Schema):
    refresh_token: str = Field(..., min_length=1, max_length=256)


class PasswordIn(Schema):
    password: str = Field(..., min_length=1, max_length=128)


class SessionOut(Schema):
    id: uuid.UUID
    name: str
    platform: str
    app_version: str
    ip: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime
    current: bool


class MeOut(Schema):
    id: uuid.UUID
    phone: str
    full_name: str
    language: str
    verification_level: int
    phone_verified_at: dt.datetime | None
    totp_enabled: bool
    recovery_codes_left: int
    citizen_id: str | None = Field(None, description="Masked: only the last 3 digits")
    citizen_id_verified: bool = Field(
        False, description="The citizen ID was asserted by the national identity (VNeID)"
    )
    birth_date: dt.date | None
    identity_level: int = Field(
        0, description="Level of the linked national identity (VNeID): 0 none, 1 or 2"
    )


class MeIn(Schema):
    full_name: str | None = Field(None, min_length=1, max_length=150)
    language: Literal["vi", "en"] | None = None


class IdentityIn(Schema):
    citizen_id: str = Field(..., max_length=20)
    birth_date: dt.date


class PasswordResetIn(Schema):
    phone: str = Field(..., max_length=32)


class PasswordResetVerifyIn(Schema):
    challenge_id: uuid.UUID
    code: str = Field(..., min_length=1, max_length=32)
    new_password: str = Field(..., min_length=1, max_length=128)


class PasswordChangeIn(Schema):
    current_password: str = Field(..., min_length=1, max_length=128)
    new_password: str = Field(..., min_length=1, max_length=128)


class TotpEnrolOut(Schema):
    secret: str = Field(..., description="Base32, for typing into the authenticator")
    otpauth_uri: str
    qr_png_base64: str


class CodeIn(Schema):
    code: str = Field(..., min_length=1, max_length=32)


class RecoveryCodesOut(Schema):
    codes: list[str] = Field(..., description="Shown this once: ask the user to save them")


class PhoneChangeIn(Schema):
    new_phone: str = Field(..., max_length=32)
    password: str | None = Field(None, max_length=128)
    totp_code: str | None = Field(None, max_length=16)


class PhoneChangeVerifyIn(Schema):
    challenge_id: uuid.UUID
    code: str = Field(..., min_length=1, max_length=32)
