"""Checking what citizens type into an address: phone number and 2025 units."""

from __future__ import annotations

from django.utils.translation import gettext as _

from auth.phone import parse_phone
from backend.errors import Unprocessable, field_detail
from postal import divisions


def check_address(
    *, phone: str, commune_code: str, province_code: str | None
) -> tuple[str, divisions.CommuneUnit]:
    """(E.164 phone, commune), or a 422 listing every field that is wrong.

    The recipient's phone follows the project's one rule (auth/phone.py): a
    Vietnamese mobile, stored as E.164. Not a landline: the courier calls or
    texts the recipient on that number.
    """
    errors: list[dict[str, str]] = []
    e164 = parse_phone(phone)
    if e164 is None:
        errors.append(
            field_detail("phone", "invalid_phone", _("Enter a Vietnamese mobile number."))
        )
    commune = divisions.get_commune(commune_code)
    if commune is None:
        errors.append(
            field_detail(
                "commune_code", "unknown_commune", _("There is no commune or ward with this code.")
            )
        )
    if province_code:
        province = divisions.get_province(province_code)
        if province is None:
            errors.append(
                field_detail(
                    "province_code",
                    "unknown_province",
                    _("There is no province or city with this code."),
                )
            )
        elif commune is not None and commune.province_code != province.code:
            errors.append(
                field_detail(
                    "commune_code",
                    "commune_not_in_province",
                    _("This commune or ward is not in the chosen province."),
                )
            )
    if errors or e164 is None or commune is None:
        raise Unprocessable(details=errors)
    return e164, commune
