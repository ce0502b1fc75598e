"""Amounts in Vietnamese words, as written on receipts ("Bằng chữ: ...").

Rules of the written form used on Vietnamese invoices and receipts: groups of
three digits with nghìn, triệu, tỷ (the count of billions read as a number above); inside a
group, "linh" for a zero tens digit, "mười" for ten, "mốt" for a final one and
"tư" for a final four after twenty and above, "lăm" for a final five after
ten; a group that follows a larger one is read in full ("không trăm"); groups
that are all zeros are skipped.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
GROUP_NAMES = ("", "nghìn", "triệu")
BILLION = 10**9


def _group(value: int, full: bool) -> list[str]:
    hundreds, tens, units = value // 100, value // 10 % 10, value % 10
    words: list[str] = []
    if full or hundreds:
        words += [DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if full or hundreds:
                words.append("linh")
            words.append(DIGITS[units])
        return words
    if tens == 1:
        words.append("mười")
    else:
        words += [DIGITS[tens], "mươi"]
    if units == 1 and tens > 1:
        words.append("mốt")
    elif units == 4 and tens > 1:
        words.append("tư")
    elif units == 5:
        words.append("lăm")
    elif units:
        words.append(DIGITS[units])
    return words


def _below_billion(value: int, full: bool) -> list[str]:
    words: list[str] = []
    for index, group in ((2, value // 10**6), (1, value // 1000 % 1000), (0, value % 1000)):
        if group == 0:
            continue
        words += _group(group, full=full or bool(words))
        if GROUP_NAMES[index]:
            words.append(GROUP_NAMES[index])
    return words


def _words(value: int, full: bool) -> list[str]:
    # Above a billion the count of billions is itself read as a number: 1.5e12 is
    # "một nghìn năm trăm tỷ".
    billions, rest = divmod(value, BILLION)
    words: list[str] = []
    if billions:
        words += [*_words(billions, full), "tỷ"]
    return words + _below_billion(rest, full=full or bool(words))


def number_in_words(value: int) -> str:
    """`value` (a non-negative integer) in Vietnamese words, lower case."""
    if value < 0:
        raise ValueError("negative amount")
    if value == 0:
        return DIGITS[0]
    return " ".join(_words(value, full=False))


def vnd_in_words(amount: int) -> str:
    """'Một trăm năm mươi nghìn đồng' for 150000."""
    text = number_in_words(amount) + " đồng"
    return text[0].upper() + text[1:]


def vnd_in_figures(amount: int) -> str:
    """'150.000 đồng' (Vietnamese thousands separator)."""
    return f"{amount:,}".replace(",", ".") + " đồng"


def vnd_for_reader(amount: int) -> str:
    """The amount in a text in the active language: '150.000 đồng' in Vietnamese,
    '150.000 VND' in English (as the push texts write amounts)."""
    figures = f"{amount:,}".replace(",", ".")
    language = translation.get_language() or settings.LANGUAGE_CODE
    return f"{figures} đồng" if language.startswith("vi") else f"{figures} VND"
