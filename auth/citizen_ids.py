"""Structural check of a citizen ID number (CCCD, 12 digits).

Layout (Circular 07/2016/TT-BCA, kept by Circular 59/2021/TT-BCA):
- digits 1-3: the province or city where the birth was registered, from the
  63 pre-2025 province codes below (the codes did not change with the 2025
  merger: numbers already issued keep them);
- digit 4: century and gender: 0/1 born 1900-1999 male/female, 2/3 born
  2000-2099, 4/5 2100-2199, 6/7 2200-2299, 8/9 2300-2399;
- digits 5-6: the last two digits of the birth year;
- digits 7-12: a serial number.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.errors import Unprocessable, field_error

PROVINCE_CODES: dict[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}


def century_digit(birth_date: dt.date, *, female: bool) -> int:
    """The 4th digit for someone born on `birth_date`."""
    return (birth_date.year // 100 - 19) * 2 + int(female)


def validate_citizen_id(citizen_id: str, birth_date: dt.date) -> str:
    """The ID if it is structurally consistent with `birth_date`, else a 422."""
    value = (citizen_id or "").strip()
    if len(value) != 12 or not value.isdigit() or not value.isascii():
        raise field_error(
            "citizen_id", "invalid_citizen_id", _("A citizen ID number has 12 digits.")
        )
    if value[:3] not in PROVINCE_CODES:
        raise field_error(
            "citizen_id",
            "invalid_citizen_id_province",
            _("The first three digits are not a province code."),
        )
    if birth_date > timezone.localdate() or birth_date.year < 1900:
        raise _bad_birth_date()
    expected_century = (birth_date.year // 100 - 19) * 2
    digit = int(value[3])
    if digit - digit % 2 != expected_century:
        raise field_error(
            "citizen_id",
            "invalid_citizen_id_century",
            _("The fourth digit does not match the century of the birth date."),
        )
    if value[4:6] != f"{birth_date.year % 100:02d}":
        raise field_error(
            "citizen_id",
            "invalid_citizen_id_birth_year",
            _("Digits 5 and 6 must be the last two digits of the birth year."),
        )
    return value


def is_structurally_valid_citizen_id(value: str) -> bool:
    """Known province prefix and a birth year not in the future (no birth date at hand).

    For ID numbers typed into forms, where the holder's birth date is not known.
    """
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return False
    if value[:3] not in PROVINCE_CODES:
        return False
    century = 1900 + (int(value[3]) // 2) * 100
    return century + int(value[4:6]) <= timezone.localdate().year


def _bad_birth_date() -> Unprocessable:
    return field_error("birth_date", "invalid_birth_date", _("This birth date is not possible."))


def masked_citizen_id(citizen_id: str | None) -> str | None:
    """Only the last 3 digits are ever shown back or logged."""
    if not citizen_id:
        return None
    return "•" * 9 + citizen_id[-3:]
