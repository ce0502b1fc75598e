"""Vietnamese mobile numbers, normalised to E.164 (+84...)."""

from __future__ import annotations

import phonenumbers
from django.utils.translation import gettext_lazy as _

from backend.errors import Unprocessable, field_error

VN_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


def normalise_vn_mobile(raw: str) -> str | None:
    """`raw` as E.164 if it is a valid Vietnamese mobile number, else None."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        return None
    try:
        number = phonenumbers.parse(text, "VN")
    except phonenumbers.NumberParseException:
        return None
    if (
        number.country_code != 84
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) not in VN_MOBILE_TYPES
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def require_vn_mobile(raw: str, *, field: str = "phone") -> str:
    """E.164 form of `raw`, or a 422 `invalid_phone` on `field`."""
    phone = normalise_vn_mobile(raw)
    if phone is None:
        raise invalid_phone(field)
    return phone


def invalid_phone(field: str = "phone") -> Unprocessable:
    error = field_error(field, "invalid_phone", _("Enter a valid Vietnamese mobile number."))
    error.code = "invalid_phone"
    return error


def mask_phone(phone: str) -> str:
    """+84912345678 -> +8491•••5678: enough to recognise, not to dial."""
    if len(phone) <= 7:
        return "•" * len(phone)
    return phone[:5] + "•" * (len(phone) - 9) + phone[-4:]
