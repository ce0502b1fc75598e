"""Code texts the phone fills in by itself (auth/sms.py): the Android app's SMS
Retriever hash on a line of its own, the origin-bound last line `@host #code`, both
(hash first: the origin-bound line must be last), or neither; notices never get
them; malformed settings stop the server at its system checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation

from auth import sms_codes
from auth.models import OtpChallenge
from auth.sms import SMS_TEMPLATES, CodeSmsTemplate, check_autofill_settings, plain_text
from tests.accounts.conftest import NOTICES, device, last_code, register, sms_to
from tests.backend.test_settings import run_manage
from tests.conftest import ApiClient, make_user

APP_HASH = "FA+9qCX9VSu"  # Google's example
DOMAIN = "dichvucong.gov.vn"
GUIDE = Path(__file__).resolve().parents[2] / "mobile_api_docs" / "accounts.md"
SIGN_UP = {
    "vi": "123456 la ma xac thuc dang ky tai khoan Dich vu cong, hieu luc 5 phut. "
    "Khong chia se ma nay.",
    "en": "123456 is your code to sign up for Public Services, valid 5 min. Never share it.",
}


def sign_up_text(language: str) -> str:
    """The sign-up code text as texted (without diacritics), code 123456, 5 minutes."""
    with translation.override(language):
        template = sms_codes.SMS_TEXTS[OtpChallenge.Purpose.REGISTER]
        return plain_text(template.format(code="123456", minutes=5))


@pytest.mark.parametrize("language", ["vi", "en"])
def test_without_the_settings_a_code_text_has_no_autofill_line(language: str) -> None:
    assert sign_up_text(language) == SIGN_UP[language]


@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_app_hash_ends_the_text_on_a_line_of_its_own(language: str, settings: Any) -> None:
    settings.SMS_ANDROID_APP_HASH = APP_HASH
    assert sign_up_text(language) == SIGN_UP[language] + "\nFA+9qCX9VSu"


@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_web_otp_domain_adds_the_origin_bound_last_line(language: str, settings: Any) -> None:
    settings.SMS_WEB_OTP_DOMAIN = DOMAIN
    assert sign_up_text(language) == SIGN_UP[language] + "\n@dichvucong.gov.vn #123456"


@pytest.mark.parametrize("language", ["vi", "en"])
def test_with_both_the_hash_comes_before_the_origin_bound_last_line(
    language: str, settings: Any
) -> None:
    settings.SMS_ANDROID_APP_HASH = APP_HASH
    settings.SMS_WEB_OTP_DOMAIN = DOMAIN
    assert sign_up_text(language) == (
        SIGN_UP[language] + "\nFA+9qCX9VSu\n@dichvucong.gov.vn #123456"
    )


@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_code_text_gets_the_lines_and_no_notice_does(language: str, settings: Any) -> None:
    values = {"code": "654321", "minutes": 5, "last4": "5678"}
    with translation.override(language):
        before = [template.format(**values) for template in SMS_TEMPLATES]
        settings.SMS_ANDROID_APP_HASH = APP_HASH
        settings.SMS_WEB_OTP_DOMAIN = DOMAIN
        after = [template.format(**values) for template in SMS_TEMPLATES]
    codes = {id(template) for template in SMS_TEMPLATES if isinstance(template, CodeSmsTemplate)}
    assert codes == {id(template) for template in sms_codes.SMS_TEXTS.values()}
    assert len(SMS_TEMPLATES) == len(codes) + len(NOTICES)
    assert not any(isinstance(notice, CodeSmsTemplate) for notice in NOTICES)
    for template, text, plain in zip(SMS_TEMPLATES, after, before, strict=True):
        if isinstance(template, CodeSmsTemplate):
            assert text == plain + "\nFA+9qCX9VSu\n@dichvucong.gov.vn #654321"
        else:
            assert text == plain
            assert "\n" not in text


@pytest.mark.django_db
def test_the_code_job_texts_the_lines_with_the_code_that_verifies(settings: Any) -> None:
    settings.SMS_ANDROID_APP_HASH = APP_HASH
    settings.SMS_WEB_OTP_DOMAIN = DOMAIN
    api = ApiClient(language="en")
    challenge_id = register(api).json()["challenge_id"]
    [message] = sms_to("+84912345678")
    code = last_code("+84912345678")
    assert message["text"] == (
        f"{code} is your code to sign up for Public Services, valid 5 min. Never share it.\n"
        f"FA+9qCX9VSu\n@dichvucong.gov.vn #{code}"
    )
    # What a browser reads (the spec's parsing): the last line, `@host #code`.
    last_line = message["text"].splitlines()[-1]
    assert re.fullmatch(r"@([^\s]+) #([^#\s]+)", last_line).groups() == (DOMAIN, code)
    verified = api.post(
        "/api/v1/auth/register/verify", {"challenge_id": challenge_id, "code": code, **device()}
    )
    assert verified.status_code == 201


@pytest.mark.django_db
def test_the_already_registered_notice_gets_no_autofill_line(settings: Any) -> None:
    settings.SMS_ANDROID_APP_HASH = APP_HASH
    settings.SMS_WEB_OTP_DOMAIN = DOMAIN
    make_user("+84912345678", language="en")
    assert register(ApiClient()).status_code == 202
    [notice] = sms_to("+84912345678")
    assert notice["purpose"] == "notice.already_registered"
    assert notice["text"] == (
        "This number already has a Public Services account. If you just signed up, sign in "
        "or use Forgot password. If this was not you, ignore this message."
    )


def test_the_system_check_accepts_empty_and_well_formed_settings(settings: Any) -> None:
    assert check_autofill_settings() == []
    settings.SMS_ANDROID_APP_HASH = "a+/0123456Z"
    settings.SMS_WEB_OTP_DOMAIN = "xn--dchvcng-xya.gov.vn"
    assert check_autofill_settings() == []


@pytest.mark.parametrize(
    "app_hash",
    ["FA+9qCX9VS", "FA+9qCX9VSu=", "FA+9qCX9VS=", "FA-9qCX9VSu", "<#> FA+9qCX9", "FA+9qCX9VSu\n"],
)
def test_the_system_check_refuses_a_hash_that_is_not_11_base64_characters(
    app_hash: str, settings: Any
) -> None:
    settings.SMS_ANDROID_APP_HASH = app_hash
    [error] = check_autofill_settings()
    assert error.id == "accounts.E001"
    assert error.msg == (
        "SMS_ANDROID_APP_HASH must be the 11-character SMS Retriever hash of the Android app "
        f"(letters, digits, + and /), not {app_hash!r}."
    )


@pytest.mark.parametrize(
    "domain",
    [
        "https://dichvucong.gov.vn",
        "dichvucong.gov.vn/",
        "dichvucong.gov.vn:443",
        "DichVuCong.gov.vn",
        "localhost",
        "dichvucong.gov.vn.",
        "-dvc.gov.vn",
        "dvc-.gov.vn",
        "dich vu cong.gov.vn",
        "dịchvụcông.gov.vn",
        "dichvucong.quangninh.gov.vn",  # 27 characters: more than the SMS has room for
    ],
)
def test_the_system_check_refuses_what_is_not_a_short_host_name(domain: str, settings: Any) -> None:
    settings.SMS_WEB_OTP_DOMAIN = domain
    [error] = check_autofill_settings()
    assert error.id == "accounts.E002"
    assert error.msg == (
        "SMS_WEB_OTP_DOMAIN must be a host name in lowercase such as dichvucong.gov.vn, "
        "without scheme, port or path, of at most 24 characters (the most that keeps every "
        f"code SMS within 140 characters), not {domain!r}."
    )


def test_manage_py_refuses_to_start_with_malformed_settings() -> None:
    result = run_manage(
        "check", SMS_ANDROID_APP_HASH="not-a-hash", SMS_WEB_OTP_DOMAIN="https://dvc.gov.vn"
    )
    assert result.returncode != 0
    assert "(accounts.E001) SMS_ANDROID_APP_HASH must be" in result.stderr
    assert "(accounts.E002) SMS_WEB_OTP_DOMAIN must be" in result.stderr


def test_the_guide_shows_the_messages_the_server_sends(settings: Any) -> None:
    settings.SMS_ANDROID_APP_HASH = APP_HASH
    settings.SMS_WEB_OTP_DOMAIN = DOMAIN
    guide = GUIDE.read_text(encoding="utf-8")
    assert "`SMS_ANDROID_APP_HASH=FA+9qCX9VSu` and `SMS_WEB_OTP_DOMAIN=dichvucong.gov.vn`" in guide
    for language in ["vi", "en"]:
        assert f"```text\n{sign_up_text(language)}\n```" in guide
