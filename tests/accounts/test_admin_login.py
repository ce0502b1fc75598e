"""Staff sign-in to the Django admin: password, then the authenticator code when set up."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from django.test import Client
from django.urls import reverse

from auth import sms_codes, totp
from auth.actions.second_factor import verify_factor
from auth.actions.sign_in import ADMIN_LOGIN, client_account_key
from auth.admin_login import SECOND_FACTOR_SESSION_KEY
from auth.models import SupportAuditRecord, User
from auth.ratelimit import failure_count
from backend.errors import Unprocessable
from tests.accounts.conftest import PASSWORD, wrong_code
from tests.accounts.staff import enable_real_totp, make_citizen, make_staff

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def code_at(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).generate_otp(totp.time_step() + offset_steps)


def log_in(client: Client, phone: str, password: str = PASSWORD, code: str = "") -> Any:
    return client.post(
        LOGIN, {"username": phone, "password": password, "totp_code": code, "next": "/admin/"}
    )


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


@pytest.fixture
def staff_with_totp() -> tuple[User, str]:
    staff = make_staff(totp=False)
    return staff, enable_real_totp(staff)


def test_login_page_asks_for_the_authenticator_code_in_vietnamese_by_default() -> None:
    page = Client().get(LOGIN).content.decode()
    assert 'name="totp_code"' in page
    assert "Mã từ ứng dụng xác thực" in page
    assert 'lang="vi"' in page


def test_login_page_in_english_when_the_browser_asks_for_it() -> None:
    page = Client().get(LOGIN, headers={"Accept-Language": "en"}).content.decode()
    assert 'name="totp_code"' in page
    assert "Authenticator code" in page
    assert 'lang="en"' in page


def test_staff_with_totp_and_the_current_code_signs_in(staff_with_totp) -> None:
    staff, secret = staff_with_totp
    client = Client()
    response = log_in(client, "0" + staff.phone[3:], code=code_at(secret))
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert signed_in_user_id(client) == str(staff.pk)
    staff.refresh_from_db()
    assert staff.totp_last_step in {totp.time_step(), totp.time_step() - 1}


def test_a_phone_written_with_a_letter_is_no_staff_number(staff_with_totp) -> None:
    staff, secret = staff_with_totp
    client = Client(headers={"Accept-Language": "en"})
    # "T" then the number: read past the letter, it was the staff member's number.
    response = log_in(client, "T" + staff.phone[3:], code=code_at(secret))
    assert response.status_code == 200
    assert signed_in_user_id(client) is None
    staff.refresh_from_db()
    assert staff.totp_last_step is None  # the code was not even checked


def test_staff_with_totp_cannot_sign_in_with_the_password_alone(staff_with_totp) -> None:
    staff, _secret = staff_with_totp
    client = Client(headers={"Accept-Language": "en"})
    response = log_in(client, staff.phone)
    assert response.status_code == 200
    assert "Enter the 6-digit code from your authenticator app." in response.content.decode()
    assert signed_in_user_id(client) is None


def test_one_step_of_clock_drift_is_accepted_at_admin_login(staff_with_totp) -> None:
    staff, secret = staff_with_totp
    client = Client()
    assert log_in(client, staff.phone, code=code_at(secret, -1)).status_code == 302
    assert signed_in_user_id(client) == str(staff.pk)


def test_two_steps_of_clock_drift_are_refused_at_admin_login(staff_with_totp) -> None:
    staff, secret = staff_with_totp
    client = Client(headers={"Accept-Language": "en"})
    response = log_in(client, staff.phone, code=code_at(secret, 2))
    assert response.status_code == 200
    assert "This code is not correct." in response.content.decode()
    assert signed_in_user_id(client) is None


def test_a_code_used_once_is_refused_the_second_time(staff_with_totp) -> None:
    staff, secret = staff_with_totp
    code = code_at(secret, 1)
    assert log_in(Client(), staff.phone, code=code).status_code == 302
    replay = Client(headers={"Accept-Language": "en"})
    response = log_in(replay, staff.phone, code=code)
    assert response.status_code == 200
    assert "This code is not correct." in response.content.decode()
    assert signed_in_user_id(replay) is None


def test_wrong_codes_count_towards_the_accounts_lockout(staff_with_totp, settings) -> None:
    settings.OTP_MAX_FAILURES = 3
    staff, secret = staff_with_totp
    account = sms_codes.user_account_key(staff)
    client = Client(headers={"Accept-Language": "en"})
    log_in(client, staff.phone, code=wrong_code(code_at(secret)))
    assert failure_count(sms_codes.OTP_SCOPE, account) == 1
    log_in(client, staff.phone, code=wrong_code(code_at(secret)))
    log_in(client, staff.phone, code=wrong_code(code_at(secret)))
    # Locked now: even the right code is refused, and the step is not spent.
    response = log_in(client, staff.phone, code=code_at(secret))
    assert response.status_code == 200
    assert "Too many wrong codes. The account is locked for a while." in (response.content.decode())
    assert signed_in_user_id(client) is None
    staff.refresh_from_db()
    assert staff.totp_last_step is None


def test_a_right_code_clears_the_failures(staff_with_totp) -> None:
    staff, secret = staff_with_totp
    client = Client()
    log_in(client, staff.phone, code=wrong_code(code_at(secret)))
    assert failure_count(sms_codes.OTP_SCOPE, sms_codes.user_account_key(staff)) == 1
    assert log_in(client, staff.phone, code=code_at(secret)).status_code == 302
    assert failure_count(sms_codes.OTP_SCOPE, sms_codes.user_account_key(staff)) == 0


def test_a_wrong_password_counts_like_in_the_app_and_checks_no_code(staff_with_totp) -> None:
    staff, secret = staff_with_totp
    client = Client()
    response = log_in(client, staff.phone, password="wrong-Passw0rd", code=code_at(secret))
    assert response.status_code == 200
    assert signed_in_user_id(client) is None
    assert failure_count(ADMIN_LOGIN.scope, client_account_key(staff.phone, "127.0.0.1")) == 1
    assert failure_count(sms_codes.OTP_SCOPE, sms_codes.user_account_key(staff)) == 0
    staff.refresh_from_db()
    assert staff.totp_last_step is None


def test_password_lockout_applies_to_the_admin_login(settings) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    staff = make_staff(totp=False)
    client = Client(headers={"Accept-Language": "en"})
    log_in(client, staff.phone, password="wrong-Passw0rd")
    log_in(client, staff.phone, password="wrong-Passw0rd")
    response = log_in(client, staff.phone)
    assert "Too many failed sign-ins. Try again later." in response.content.decode()
    assert signed_in_user_id(client) is None


def test_a_citizen_cannot_sign_in_to_the_admin() -> None:
    citizen = make_citizen(totp=False)
    client = Client()
    response = log_in(client, citizen.phone)
    assert response.status_code == 200
    assert signed_in_user_id(client) is None


def test_staff_without_totp_signs_in_but_support_pages_refuse_them_clearly() -> None:
    staff = make_staff(totp=False)
    citizen = make_citizen()
    client = Client(headers={"Accept-Language": "en"})
    assert log_in(client, staff.phone).status_code == 302
    for url in (
        reverse("admin:accounts_support_lookup"),
        reverse("admin:accounts_support_reset", args=[citizen.pk]),
        reverse("admin:accounts_supportreset_changelist"),
        reverse("admin:accounts_supportauditrecord_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        page = response.content.decode()
        assert "Support functions are not available to you" in page
        assert "Turn on an authenticator app (TOTP) for your account to use support functions." in (
            page
        )
        assert "turn on the authenticator app under Security" in page
    assert SupportAuditRecord.objects.count() == 0


def test_support_refusal_page_is_in_vietnamese_by_default() -> None:
    client = Client()
    client.force_login(make_staff(totp=False))
    response = client.get(reverse("admin:accounts_support_lookup"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "Bạn không được dùng chức năng hỗ trợ" in page
    assert "totp_required" in page


def test_a_second_factor_code_key_with_its_tries_spent_is_a_clear_error(
    staff_with_totp, settings
) -> None:
    settings.OTP_MAX_ATTEMPTS_PER_CODE = 2
    staff, secret = staff_with_totp
    bad = wrong_code(code_at(secret))
    for _ in range(2):
        with pytest.raises(Unprocessable) as first:
            verify_factor(staff, "totp", bad, code_key="challenge-1:totp")
        assert first.value.code == "invalid_code"
    with pytest.raises(Unprocessable) as spent:
        verify_factor(staff, "totp", code_at(secret), code_key="challenge-1:totp")
    assert spent.value.code == "code_attempts_exceeded"


def test_support_pages_open_after_signing_in_with_the_code(staff_with_totp) -> None:
    staff, secret = staff_with_totp
    client = Client()
    assert log_in(client, staff.phone, code=code_at(secret)).status_code == 302
    mark = client.session[SECOND_FACTOR_SESSION_KEY]
    assert (mark["user"], mark["factor"]) == (str(staff.pk), "totp")
    assert client.get(reverse("admin:accounts_support_lookup")).status_code == 200
    assert client.get(reverse("admin:accounts_supportauditrecord_changelist")).status_code == 200


def test_a_session_opened_before_turning_totp_on_cannot_use_support_pages() -> None:
    staff = make_staff(totp=False)
    client = Client(headers={"Accept-Language": "en"})
    assert log_in(client, staff.phone).status_code == 302
    secret = enable_real_totp(staff)
    response = client.get(reverse("admin:accounts_support_lookup"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "second_factor_sign_in_required" in page
    assert "This session was opened without your authenticator code." in page
    assert client.get(reverse("admin:accounts_supportreset_changelist")).status_code == 403
    # Signing in again with the code opens them.
    client.post(reverse("admin:logout"))
    assert log_in(client, staff.phone, code=code_at(secret)).status_code == 302
    assert client.get(reverse("admin:accounts_support_lookup")).status_code == 200


def test_a_session_of_another_user_does_not_carry_the_second_factor_mark(
    staff_with_totp,
) -> None:
    staff, secret = staff_with_totp
    other = make_staff(totp=False)
    client = Client()
    assert log_in(client, staff.phone, code=code_at(secret)).status_code == 302
    assert log_in(client, other.phone).status_code == 302
    assert signed_in_user_id(client) == str(other.pk)
    assert SECOND_FACTOR_SESSION_KEY not in client.session
    enable_real_totp(other)
    response = client.get(reverse("admin:accounts_support_lookup"))
    assert response.status_code == 403
    assert "second_factor_sign_in_required" in response.content.decode()


def test_a_forced_session_without_the_code_is_refused_on_support_pages(staff_with_totp) -> None:
    staff, _secret = staff_with_totp
    client = Client()
    client.force_login(staff)
    response = client.get(reverse("admin:accounts_support_lookup"))
    assert response.status_code == 403
    assert "second_factor_sign_in_required" in response.content.decode()
