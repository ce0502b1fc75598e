"""One-time codes sent by SMS: their texts, their hashes, their errors.

Codes are 6 digits from `secrets`, stored as an HMAC bound to the challenge,
its purpose and its phone. A code lives OTP_TTL_SECONDS, is spent by its first
right use, allows OTP_MAX_ATTEMPTS_PER_CODE tries, and every wrong try counts
towards the account's lockout (OTP_MAX_FAILURES consecutive failures lock it for
OTP_LOCKOUT_SECONDS). Asking for a new code never resets that count.

Issuing, resending and checking a code change state: auth/actions/challenges.py.
"""

from __future__ import annotations

import secrets

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth.models import OtpChallenge, User
from auth.sms import CodeSmsTemplate, SmsTemplate
from backend.errors import RateLimited, Unprocessable
from backend.keys import ACCOUNTS_SALT, keyed_hash

# A code goes in the language of the request that asked for it: whoever asked holds
# the app and reads the code now. The code comes first (it shows in the phone's
# notification preview, and auto-fill finds it); every text fits one SMS segment,
# and 140 bytes with both auto-fill lines at their longest (auth/sms.py), hence the
# short wording.
SMS_TEXTS = {
    OtpChallenge.Purpose.REGISTER: CodeSmsTemplate(
        _(
            "{code} is your code to sign up for Public Services, valid {minutes} min. Never "
            "share it."
        )
    ),
    OtpChallenge.Purpose.LOGIN: CodeSmsTemplate(
        _(
            "{code} is your Public Services code for a new device, valid {minutes} min. Not you? "
            "Change password."
        )
    ),
    OtpChallenge.Purpose.RESET_PASSWORD: CodeSmsTemplate(
        _(
            "{code} is your code to reset your Public Services password, valid {minutes} min. "
            "Never share it."
        )
    ),
    OtpChallenge.Purpose.CHANGE_PHONE: CodeSmsTemplate(
        _(
            "{code} is your code to move your Public Services account to this number, valid "
            "{minutes} min."
        )
    ),
    OtpChallenge.Purpose.LINK_NATIONAL: CodeSmsTemplate(
        _(
            "{code} is your code to link VNeID to Public Services, valid {minutes} min. Not you? "
            "Do not enter it."
        )
    ),
}
# Sent instead of a code to a number that already has an account, in that
# account's language (it is the owner who reads it).
NOTICE_ALREADY_REGISTERED = SmsTemplate(
    _(
        "This number already has a Public Services account. If you just signed up, sign in "
        "or use Forgot password. If this was not you, ignore this message."
    )
)

OTP_SCOPE = "otp"


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def hash_code(challenge: OtpChallenge, code: str) -> str:
    return keyed_hash(
        "accounts.otp",
        f"{challenge.id}:{challenge.purpose}:{challenge.phone}:{code}",
        salt=ACCOUNTS_SALT,
    )


def account_key(challenge: OtpChallenge) -> str:
    return f"user:{challenge.user_id}" if challenge.user_id else f"phone:{challenge.phone}"


def user_account_key(user: User) -> str:
    return f"user:{user.pk}"


def invalid_code() -> Unprocessable:
    return Unprocessable("invalid_code", _("This code is not correct."))


def locked(retry_after: int) -> RateLimited:
    return RateLimited(
        retry_after,
        "too_many_failed_codes",
        _("Too many wrong codes. The account is locked for a while."),
    )


def check_expiry(challenge: OtpChallenge) -> None:
    if timezone.now() >= challenge.expires_at:
        raise Unprocessable("code_expired", _("This code has expired. Ask for a new one."))
