"""Which language an SMS is in: a code follows the request that asked for it (whoever
asked holds the app and reads the code now); a notice about an account follows the
account's saved language, as pushes and the inbox do."""

from __future__ import annotations

import pytest

from tests.accounts.conftest import PASSWORD, last_code, register, sms_to
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "start"),
    [("vi", " la ma xac thuc dang ky tai khoan Dich vu cong"), ("en", " is your code to sign up")],
)
def test_a_code_is_in_the_language_of_the_request(language: str, start: str) -> None:
    assert register(ApiClient(language=language)).status_code == 202
    [message] = sms_to("+84912345678")
    assert message["text"].startswith(last_code("+84912345678") + start)


def test_the_already_registered_notice_is_in_the_accounts_language() -> None:
    make_user("+84912345678", language="en")
    assert register(ApiClient(language="vi")).status_code == 202
    [notice] = sms_to("+84912345678")
    assert notice["purpose"] == "notice.already_registered"
    assert notice["text"].startswith("This number already has a Public Services account.")


def test_a_phone_change_code_follows_the_request_and_its_notice_the_account() -> None:
    user = make_user("+84912345678", language="en")
    api = ApiClient(sign_in(user)[1].access_token, language="vi")
    started = api.post(
        "/api/v1/auth/phone/change", {"new_phone": "0987654321", "password": PASSWORD}
    )
    assert started.status_code == 202
    [code_sms] = sms_to("+84987654321")
    assert code_sms["text"].startswith(last_code("+84987654321") + " la ma xac nhan doi so")
    done = api.post(
        "/api/v1/auth/phone/change/verify",
        {"challenge_id": started.json()["challenge_id"], "code": last_code("+84987654321")},
    )
    assert done.status_code == 200
    [notice] = sms_to("+84912345678")
    assert notice["text"] == (
        "The phone number of your Public Services account was changed to the number ending "
        "4321. If this was not you, contact support now."
    )
