"""A factor the session itself set up does not vouch for that session.

Whoever holds a session signed in within the last 24 hours (its tokens copied from
the phone, a device left unlocked) may set up an authenticator app, or new recovery
codes, with nothing more. Were those enough to prove control of the account, the
session alone could move the account to another number (then reset its password)
or link another person's national identity to it (then sign in as its owner with
it, for good). So an authenticator or recovery codes set up after the session
signed in are no proof for the phone change or the link it asks for: the password,
or the code texted to the account's number, is.
"""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from django.utils import timezone

from auth import totp
from auth.actions.second_factor import generate_recovery_codes
from auth.models import DeviceSession, NationalIdentity
from fakes.identity_provider import FakeIdentityProvider
from tests.accounts.conftest import PASSWORD, all_sms
from tests.accounts.national import national_callback
from tests.accounts.staff import enable_real_totp
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

OWNER = "+84911111111"
LINK_START = "/api/v1/auth/national/link/start"
LINK_CALLBACK = "/api/v1/auth/national/link/callback"
LINK_VERIFY = "/api/v1/auth/national/link/verify"


def later_code(secret: str) -> str:
    """The code of the next step (within the accepted drift): the step after one spent."""
    return pyotp.TOTP(secret).at(timezone.now() + dt.timedelta(seconds=totp.STEP_SECONDS))


def enrol_through(api: ApiClient) -> str:
    """The session sets up an authenticator app of its own: its secret."""
    secret = api.post("/api/v1/auth/totp/enrol").json()["secret"]
    confirmed = api.post("/api/v1/auth/totp/confirm", {"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed
    return secret


def link_from(api: ApiClient) -> dict[str, object]:
    response = national_callback(api, start_path=LINK_START, callback_path=LINK_CALLBACK)
    assert response.json()["status"] == "link_required", response
    link: dict[str, object] = response.json()["link"]
    return link


def test_an_authenticator_the_session_set_up_does_not_move_the_account() -> None:
    owner = make_user(OWNER)
    api = ApiClient(sign_in(owner)[1].access_token)
    secret = enrol_through(api)

    response = api.post(
        "/api/v1/auth/phone/change", {"new_phone": "0987654321", "totp_code": later_code(secret)}
    )

    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "totp_code"
    assert response.json()["details"][0]["code"] == "authenticator_newer_than_sign_in"
    # No code to the new number: only the owner's notice of the set-up.
    assert [(m["to"], m["purpose"]) for m in all_sms()] == [(OWNER, "notice.totp_enabled")]
    # The password still proves it.
    assert (
        api.post(
            "/api/v1/auth/phone/change", {"new_phone": "0987654321", "password": PASSWORD}
        ).status_code
        == 202
    )


def test_an_authenticator_set_up_before_the_sign_in_moves_the_account() -> None:
    owner = make_user(OWNER)
    secret = enable_real_totp(owner, confirmed_at=timezone.now() - dt.timedelta(days=3))
    api = ApiClient(sign_in(owner)[1].access_token)
    response = api.post(
        "/api/v1/auth/phone/change",
        {"new_phone": "0987654321", "totp_code": pyotp.TOTP(secret).now()},
    )
    assert response.status_code == 202


def test_an_authenticator_the_session_set_up_does_not_link_an_identity(
    idp: FakeIdentityProvider,
) -> None:
    owner = make_user(OWNER)
    api = ApiClient(sign_in(owner)[1].access_token)
    secret = enrol_through(api)

    link = link_from(api)
    assert link["methods"] == ["sms_otp"]
    linked = ApiClient().post(
        LINK_VERIFY, {"flow_id": link["flow_id"], "method": "totp", "code": later_code(secret)}
    )

    assert linked.status_code == 422
    assert linked.json()["code"] == "invalid_code"
    assert not NationalIdentity.objects.exists()
    assert DeviceSession.objects.filter(user=owner).count() == 1


def test_recovery_codes_the_session_made_do_not_link_an_identity(
    idp: FakeIdentityProvider,
) -> None:
    owner = make_user(OWNER)
    secret = enable_real_totp(owner, confirmed_at=timezone.now() - dt.timedelta(days=3))
    generate_recovery_codes(owner)  # the owner's own set, made long before
    api = ApiClient(sign_in(owner)[1].access_token)
    codes = api.post(
        "/api/v1/auth/recovery-codes/regenerate", {"code": pyotp.TOTP(secret).now()}
    ).json()["codes"]

    link = link_from(api)
    assert link["methods"] == ["sms_otp", "totp"]
    linked = ApiClient().post(
        LINK_VERIFY, {"flow_id": link["flow_id"], "method": "recovery_code", "code": codes[0]}
    )

    assert linked.status_code == 422
    assert linked.json()["code"] == "invalid_code"
    assert not NationalIdentity.objects.exists()


def test_factors_set_up_before_the_sign_in_link_an_identity(idp: FakeIdentityProvider) -> None:
    owner = make_user(OWNER)
    secret = enable_real_totp(owner, confirmed_at=timezone.now() - dt.timedelta(days=3))
    api = ApiClient(sign_in(owner)[1].access_token)

    link = link_from(api)
    assert link["methods"] == ["sms_otp", "totp"]
    linked = ApiClient().post(
        LINK_VERIFY,
        {"flow_id": link["flow_id"], "method": "totp", "code": pyotp.TOTP(secret).now()},
    )

    assert linked.status_code == 200, linked
    assert NationalIdentity.objects.get().user_id == owner.pk


def test_recovery_codes_the_session_made_do_not_remove_an_older_authenticator() -> None:
    owner = make_user(OWNER)
    secret = enable_real_totp(owner, confirmed_at=timezone.now() - dt.timedelta(days=3))
    api = ApiClient(sign_in(owner)[1].access_token)
    codes = api.post(
        "/api/v1/auth/recovery-codes/regenerate", {"code": pyotp.TOTP(secret).now()}
    ).json()["codes"]

    response = api.post("/api/v1/auth/totp/disable", {"code": codes[0]})

    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "code"
    assert response.json()["details"][0]["code"] == "recovery_codes_newer_than_sign_in"
    owner.refresh_from_db()
    assert owner.has_totp
    # The owner's authenticator still does it.
    assert api.post("/api/v1/auth/totp/disable", {"code": later_code(secret)}).status_code == 204


def test_an_authenticator_the_session_set_up_is_removed_with_its_own_recovery_code() -> None:
    owner = make_user(OWNER)
    api = ApiClient(sign_in(owner)[1].access_token)
    secret = api.post("/api/v1/auth/totp/enrol").json()["secret"]
    codes = api.post("/api/v1/auth/totp/confirm", {"code": pyotp.TOTP(secret).now()}).json()[
        "codes"
    ]
    assert api.post("/api/v1/auth/totp/disable", {"code": codes[0]}).status_code == 204
    owner.refresh_from_db()
    assert not owner.has_totp
