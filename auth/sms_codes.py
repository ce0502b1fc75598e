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
from backend.errors import RateLimited, Unprocessable
from backend.keys import ACCOUNTS_SALT, keyed_hash

# Every SMS citizens receive is in Vietnamese (the gateway's brand name prefixes it).
SMS_TEXTS = {
    OtpChallenge.Purpose.REGISTER: (
        "{code} là mã xác thực đăng ký tài khoản Dịch vụ công, hiệu lực {minutes} phút. "
        "Không chia sẻ mã này cho bất kỳ ai."
    ),
    OtpChallenge.Purpose.LOGIN: (
        "{code} là mã xác thực đăng nhập Dịch vụ công trên thiết bị mới, hiệu lực "
        "{minutes} phút. Nếu không phải bạn, hãy đổi mật khẩu ngay."
    ),
    OtpChallenge.Purpose.RESET_PASSWORD: (
        "{code} là mã đặt lại mật khẩu tài khoản Dịch vụ công, hiệu lực {minutes} phút. "
        "Không chia sẻ mã này cho bất kỳ ai."
    ),
    OtpChallenge.Purpose.CHANGE_PHONE: (
        "{code} là mã xác nhận đổi số điện thoại tài khoản Dịch vụ công sang số này, "
        "hiệu lực {minutes} phút."
    ),
    OtpChallenge.Purpose.LINK_NATIONAL: (
        "{code} là mã xác nhận liên kết định danh điện tử VNeID với tài khoản Dịch vụ công, "
        "hiệu lực {minutes} phút. Nếu không phải bạn, đừng nhập mã này."
    ),
}
NOTICE_ALREADY_REGISTERED = (
    "Số điện thoại này đã có tài khoản Dịch vụ công. Nếu bạn vừa đăng ký, hãy đăng nhập "
    "hoặc dùng chức năng Quên mật khẩu. Nếu không phải bạn, hãy bỏ qua tin nhắn này."
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
