"""Every SMS a citizen gets is in their language, unaccented, and fits one GSM-7
segment (160 characters): a Vietnamese text with diacritics needs UCS-2 (70
characters a segment, so two or three times the price) and some phones and
networks garble it. A code comes first. With the auto-fill lines at their longest
(auth/sms.py), a code text still fits, and 140 bytes when it carries the Android
app's hash (the SMS Retriever's limit)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from auth import sms_codes
from auth.models import OtpChallenge
from auth.sms import (
    GSM7_SEGMENT,
    SMS_RETRIEVER_MAX_BYTES,
    SMS_TEMPLATES,
    WEB_OTP_DOMAIN_MAX_LENGTH,
    check_autofill_settings,
    gsm7_septets,
    plain_text,
    read_outbox,
    send_sms,
)
from notifications.templates import ACCOUNT_TEMPLATES, TEMPLATES, render_context, render_sms
from tests.accounts.conftest import NOTICES

# Realistic values, at their longest; a template with another placeholder fails
# here until it gets one.
VALUES = {"code": "123456", "minutes": "15", "last4": "5678"}
# The longest dossier code the model allows: a 20-character agency code.
LONGEST_DOSSIER_CODE = "HN-HOANKIEM-TNMT-DD1-261124-0001"
# The auto-fill lines at their longest: every hash has 11 characters, and this host
# name has the most characters SMS_WEB_OTP_DOMAIN may have.
APP_HASH = "FA+9qCX9VSu"
LONGEST_DOMAIN = "dichvucong.danang.gov.vn"
AUTOFILL = {
    "off": {},
    "web_otp": {"SMS_WEB_OTP_DOMAIN": LONGEST_DOMAIN},
    "app_hash": {"SMS_ANDROID_APP_HASH": APP_HASH},
    "both": {"SMS_ANDROID_APP_HASH": APP_HASH, "SMS_WEB_OTP_DOMAIN": LONGEST_DOMAIN},
}


def one_segment(text: str) -> bool:
    septets = gsm7_septets(text)
    return septets is not None and septets <= GSM7_SEGMENT


def test_the_longest_autofill_settings_are_allowed(settings: Any) -> None:
    assert len(LONGEST_DOMAIN) == WEB_OTP_DOMAIN_MAX_LENGTH
    settings.SMS_ANDROID_APP_HASH = APP_HASH
    settings.SMS_WEB_OTP_DOMAIN = LONGEST_DOMAIN
    assert check_autofill_settings() == []


@pytest.mark.parametrize("autofill", AUTOFILL)
@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_account_sms_fits_one_gsm7_segment_in_both_languages(
    language: str, autofill: str, settings: Any
) -> None:
    for name, value in AUTOFILL[autofill].items():
        setattr(settings, name, value)
    assert set(sms_codes.SMS_TEXTS) == set(OtpChallenge.Purpose)
    assert len(SMS_TEMPLATES) == len(sms_codes.SMS_TEXTS) + len(NOTICES)
    assert all(any(t is n for t in SMS_TEMPLATES) for n in NOTICES)
    codes = [id(template) for template in sms_codes.SMS_TEXTS.values()]
    too_long = []
    with translation.override(language):
        for template in SMS_TEMPLATES:
            text = plain_text(template.format(**VALUES))
            if not one_segment(text):
                too_long.append((len(text), text))
            if id(template) in codes and "SMS_WEB_OTP_DOMAIN" in AUTOFILL[autofill]:
                assert text.splitlines()[-1] == f"@{LONGEST_DOMAIN} #123456"
            if id(template) in codes and "SMS_ANDROID_APP_HASH" in AUTOFILL[autofill]:
                assert APP_HASH in text.splitlines()
                if len(text.encode()) > SMS_RETRIEVER_MAX_BYTES:
                    too_long.append((len(text.encode()), text))
    assert too_long == []


@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_code_comes_first(language: str) -> None:
    with translation.override(language):
        for template in sms_codes.SMS_TEXTS.values():
            assert template.format(**VALUES).startswith("123456 ")


def test_every_account_sms_is_translated() -> None:
    for template in SMS_TEMPLATES:
        with translation.override("en"):
            english = template.format(**VALUES)
        with translation.override("vi"):
            vietnamese = template.format(**VALUES)
        assert vietnamese != english
        assert plain_text(vietnamese) != vietnamese  # the catalogue keeps the diacritics


@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_notification_sms_fits_one_gsm7_segment(language: str) -> None:
    context = render_context(
        language=language,
        code=LONGEST_DOSSIER_CODE,
        procedure="Đăng ký khai sinh",
        agency="Ủy ban nhân dân phường Hoàn Kiếm",
        message="Thiếu bản sao giấy chứng sinh " * 20,
        data={"amount": 1_250_000, "method": "post"},
    )
    templates = [*TEMPLATES.values(), *ACCOUNT_TEMPLATES.values()]
    texts = [render_sms(t, language, context) for t in templates if t.sms_vi or t.sms_en]
    assert len(texts) == 4
    assert [text for text in map(plain_text, texts) if not one_segment(text)] == []


def test_plain_text_drops_every_vietnamese_diacritic() -> None:
    vietnamese = "Đăng ký hồ sơ: ĂÂÊÔƠƯ ăâêôơư ÁÀẢÃẠ ấầẩẫậ ếềểễệ ốồổỗộ ớờởỡợ ứừửữự ýỳỷỹỵ đ"
    assert plain_text(vietnamese) == (
        "Dang ky ho so: AAEOOU aaeoou AAAAA aaaaa eeeee ooooo ooooo uuuuu yyyyy d"
    )
    assert gsm7_septets(plain_text(vietnamese)) == len(vietnamese)


def test_send_sms_sends_every_text_without_diacritics(db) -> None:
    send_sms("+84912345678", "Hồ sơ đã có kết quả", purpose="notice.test")
    assert [m["text"] for m in read_outbox()] == ["Ho so da co ket qua"]
