"""Vietnamese mobile numbers, normalised to E.164 (+84xxxxxxxxx).

The one phone rule of the project: account phones (sign-up, sign-in, phone change,
support resets), phones in dossier forms and postal recipients' phones all go
through `parse_phone`. Only Vietnamese mobiles are accepted, landlines are not:
every one of these numbers receives SMS (codes, delivery notices).
"""

from __future__ import annotations

import re

import phonenumbers
from django.utils.translation import gettext_lazy as _

from backend.errors import Unprocessable, field_error

_SEPARATORS = re.compile(r"[\s.\-()]")
_MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE}


def parse_phone(raw: str) -> str | None:
    """`raw` as E.164 if it is a Vietnamese mobile number, else None.

    Accepts the forms people type: 0912345678, +84912345678, 84912345678.
    Landlines, foreign numbers and anything else are refused.
    """
    digits = _SEPARATORS.sub("", raw or "")
    if not digits or len(digits) > 32:
        return None
    if digits.startswith("84") and len(digits) == 11 and digits.isdigit():
        digits = "+" + digits
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        number = phonenumbers.parse(digits, "VN")
    except phonenumbers.NumberParseException:
        return None
    if (
        phonenumbers.region_code_for_number(number) != "VN"
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) not in _MOBILE_TYPES
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phone(raw: str, *, field: str = "phone") -> str:
    """`raw` as E.164 if it is a Vietnamese mobile number, else a 422 on `field`."""
    phone = parse_phone(raw)
    if phone is None:
        raise invalid_phone(field)
    return phone


def invalid_phone(field: str = "phone") -> Unprocessable:
    return field_error(
        field, "invalid_phone", _("Enter a Vietnamese mobile number, e.g. 0912345678.")
    )


def mask_phone(phone: str) -> str:
    """+84912345678 -> +8491•••5678: enough to recognise, not to dial (UI and logs)."""
    if len(phone) <= 9:
        return "•" * len(phone)
    return phone[:5] + "•" * (len(phone) - 9) + phone[-4:]
