"""Vietnamese mobile numbers, normalised to E.164 (+84xxxxxxxxx)."""

from __future__ import annotations

import re

import phonenumbers
from django.utils.translation import gettext_lazy as _

from backend.errors import Unprocessable, field_error

_SEPARATORS = re.compile(r"[\s.\-()]")
_MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE}


def normalise_phone(raw: str, *, field: str = "phone") -> str:
    """`raw` as E.164 if it is a Vietnamese mobile number, else a 422 on `field`.

    Accepts the forms people type: 0912345678, +84912345678, 84912345678.
    Landlines, foreign numbers and anything else are refused.
    """
    digits = _SEPARATORS.sub("", raw or "")
    if digits.startswith("84") and len(digits) == 11 and digits.isdigit():
        digits = "+" + digits
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        number = phonenumbers.parse(digits, "VN")
    except phonenumbers.NumberParseException as exc:
        raise _invalid(field) from exc
    if (
        phonenumbers.region_code_for_number(number) != "VN"
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) not in _MOBILE_TYPES
    ):
        raise _invalid(field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _invalid(field: str) -> Unprocessable:
    return field_error(
        field, "invalid_phone", _("Enter a Vietnamese mobile number, e.g. 0912345678.")
    )


def masked(phone: str) -> str:
    """+84912345678 -> +849******78 (for messages and logs)."""
    if len(phone) < 6:
        return "*" * len(phone)
    return phone[:4] + "*" * (len(phone) - 6) + phone[-2:]
