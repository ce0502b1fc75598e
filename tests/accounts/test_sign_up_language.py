"""A new account's `language` comes from its sign-up request (Accept-Language, as the
API reads it everywhere): vi or en, vi for anything else. SMS notices and pushes then
speak it before the app ever calls `PATCH /me`. An account in use keeps the language
it has: signing in, or signing up again on its number, never changes it."""

from __future__ import annotations

from typing import Any

import pytest

from auth.models import User
from fakes.identity_provider import FakeIdentityProvider, default_person
from tests.accounts.conftest import PASSWORD, device, last_code, register, sms_to
from tests.accounts.national import national_callback
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

PHONE = "+84912345678"

LANGUAGES = [
    ("en", "en"),
    ("en-US,en;q=0.9,vi;q=0.8", "en"),
    ("fr-FR, en;q=0.5", "en"),  # the first one the app speaks
    ("vi", "vi"),
    ("fr", "vi"),
    ("zh-CN,zh;q=0.9", "vi"),
    (None, "vi"),
]


def _signed_up(accept_language: str | None) -> ApiClient:
    """Sign up on PHONE and verify the code, all in `accept_language`: the signed-in app."""
    api = ApiClient(language=accept_language)
    started = register(api)
    assert started.status_code == 202, started
    verified = api.post(
        "/api/v1/auth/register/verify",
        {"challenge_id": started.json()["challenge_id"], "code": last_code(PHONE), **device()},
    )
    assert verified.status_code == 201, verified
    return ApiClient(token=verified.json()["access_token"])


@pytest.mark.parametrize(("accept_language", "expected"), LANGUAGES)
def test_a_new_account_speaks_the_language_of_its_sign_up(
    accept_language: str | None, expected: str
) -> None:
    me = _signed_up(accept_language).get("/api/v1/auth/me").json()

    assert me["language"] == expected
    assert User.objects.get(phone=PHONE).language == expected


@pytest.mark.parametrize(("first", "again", "expected"), [("vi", "en", "en"), ("en", "fr", "vi")])
def test_signing_up_again_before_verifying_takes_the_new_requests_language(
    first: str, again: str, expected: str, settings: Any
) -> None:
    settings.SMS_RESEND_SECONDS = 0
    assert register(ApiClient(language=first)).status_code == 202

    assert register(ApiClient(language=again)).status_code == 202

    assert User.objects.get(phone=PHONE).language == expected


@pytest.mark.parametrize(("chosen", "request_language"), [("en", "vi"), ("vi", "en")])
def test_signing_up_on_a_number_in_use_keeps_its_accounts_language(
    chosen: str, request_language: str
) -> None:
    make_user(PHONE, language=chosen)

    assert register(ApiClient(language=request_language)).status_code == 202

    assert User.objects.get(phone=PHONE).language == chosen
    [notice] = sms_to(PHONE)
    assert notice["purpose"] == "notice.already_registered"


@pytest.mark.parametrize(("chosen", "request_language"), [("en", "vi"), ("vi", "en")])
def test_signing_in_in_another_language_keeps_the_chosen_one(
    chosen: str, request_language: str
) -> None:
    user = make_user(PHONE)
    ApiClient(token=sign_in(user)[1].access_token).patch("/api/v1/auth/me", {"language": chosen})
    api = ApiClient(language=request_language)

    started = api.post("/api/v1/auth/login", {"phone": PHONE, "password": PASSWORD, **device()})
    assert started.status_code == 200, started
    challenge_id = started.json()["challenge_id"]
    done = api.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": challenge_id, "method": "sms_otp", "code": last_code(PHONE)},
    )
    assert done.status_code == 200, done

    assert User.objects.get(pk=user.pk).language == chosen
    me = ApiClient(token=done.json()["access_token"], language=request_language)
    assert me.get("/api/v1/auth/me").json()["language"] == chosen


@pytest.mark.parametrize(("accept_language", "expected"), [("en", "en"), ("fr", "vi")])
def test_an_account_made_by_a_national_sign_in_speaks_its_requests_language(
    idp: FakeIdentityProvider, accept_language: str, expected: str
) -> None:
    response = national_callback(ApiClient(language=accept_language))

    assert response.status_code == 200, response
    assert response.json()["account_created"] is True
    assert User.objects.get(phone=default_person()["phone_number"]).language == expected


def test_a_national_sign_in_of_an_existing_account_keeps_its_language(
    idp: FakeIdentityProvider,
) -> None:
    assert national_callback(ApiClient(language="en")).status_code == 200
    user = User.objects.get(phone=default_person()["phone_number"])
    User.objects.filter(pk=user.pk).update(language="vi")  # chosen later in the app

    again = national_callback(ApiClient(language="en"))

    assert (again.status_code, again.json()["account_created"]) == (200, False)
    assert User.objects.get(pk=user.pk).language == "vi"


def test_a_sign_up_refused_changes_nothing() -> None:
    assert register(ApiClient(language="en")).status_code == 202

    refused = register(ApiClient(language="vi"))  # a new code too soon

    assert (refused.status_code, refused.json()["code"]) == (429, "otp_resend_too_soon")
    assert User.objects.get(phone=PHONE).language == "en"
