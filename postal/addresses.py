"""Checking what citizens type into an address: phone number and 2025 units."""

from __future__ import annotations

import phonenumbers
from django.utils.translation import gettext as _

from backend.errors import Unprocessable
from postal import divisions


def normalise_mobile(raw: str) -> str | None:
    """A Vietnamese mobile number as E.164 (+849...), or None if it is not one."""
    try:
        number = phonenumbers.parse(raw, "VN")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 84 or not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_address(
    *, phone: str, commune_code: str, province_code: str | None
) -> tuple[str, divisions.CommuneUnit]:
    """(E.164 phone, commune), or a 422 listing every field that is wrong."""
    errors: list[dict[str, str]] = []
    e164 = normalise_mobile(phone)
    if e164 is None:
        errors.append(
            {
                "field": "phone",
                "code": "invalid_phone",
                "message": str(_("Enter a Vietnamese mobile number.")),
            }
        )
    commune = divisions.get_commune(commune_code)
    if commune is None:
        errors.append(
            {
                "field": "commune_code",
                "code": "unknown_commune",
                "message": str(_("There is no commune or ward with this code.")),
            }
        )
    if province_code:
        province = divisions.get_province(province_code)
        if province is None:
            errors.append(
                {
                    "field": "province_code",
                    "code": "unknown_province",
                    "message": str(_("There is no province or city with this code.")),
                }
            )
        elif commune is not None and commune.province_code != province.code:
            errors.append(
                {
                    "field": "commune_code",
                    "code": "commune_not_in_province",
                    "message": str(_("This commune or ward is not in the chosen province.")),
                }
            )
    if errors or e164 is None or commune is None:
        raise Unprocessable(details=errors)
    return e164, commune
