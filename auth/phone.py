"""Vietnamese mobile numbers, normalised to E.164 (+84xxxxxxxxx).

The one phone rule of the project: account phones (sign-up, sign-in, phone change,
support resets), phones in dossier forms and postal recipients' phones all go
through `parse_phone`. Only Vietnamese mobiles are accepted, landlines are not:
every one of these numbers receives SMS (codes, delivery notices).

Only what a person writes as a phone number is read as one: ASCII digits, one "+"
before them (`(+84) 912...` too) and the separators spaces (any Unicode space: a
non-breaking one pasted from a page), dots, hyphens and parentheses. Anything else
is refused, not skipped: `phonenumbers` on its own drops leading text ("T317-261207"
would be +84 317 261 207, the admin's whole-number phone search a look-up), reads
letters as keypad digits and cuts off extensions. Full-width and other non-ASCII
digits are refused too: nothing here normalises them, and no Vietnamese keyboard
types them.
"""

from __future__ import annotations

import re

import phonenumbers
from django.utils.translation import gettext_lazy as _

from backend.errors import Unprocessable, field_error

_SEPARATORS = re.compile(r"[\s.\-()]")
# What is left once the separators are gone: digits (ASCII only), after one "+" at most.
_WRITTEN_NUMBER = re.compile(r"\+?[0-9]+", re.ASCII)
_MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE}


def parse_phone(raw: str) -> str | None:
    """`raw` as E.164 if it is a Vietnamese mobile number, else None.

    Accepts the forms people type: 0912345678, 0912 345 678, +84 912-345-678,
    (+84) 912.345.678, 84912345678, 0084912345678. Landlines, foreign numbers and
    any text with other characters than digits, "+" and separators are refused.
    """
    digits = _SEPARATORS.sub("", raw or "")
    if len(digits) > 32 or not _WRITTEN_NUMBER.fullmatch(digits):
        return None
    if digits.startswith("84") and len(digits) == 11:
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
