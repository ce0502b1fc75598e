"""A security event forgets every device the account signed in on before it.

A device signs in again without the second step when the app proves, with the
device key of an earlier sign-in, that it is that installation
(auth/actions/sign_in.py `_known_device`). A session ended by a plain logout used
to keep vouching after a password reset, a phone change or a support reset: an
old phone holding its key (stolen, sold) skipped the second step. No session older
than such an event vouches now, but the one that made the change.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from auth.actions import sign_in as sign_in_actions
from auth.actions.sign_in import DeviceInfo
from auth.models import DeviceSession, User
from tests.accounts.conftest import last_code, sms_to
from tests.accounts.staff import make_citizen
from tests.accounts.test_pending_sign_ins import EVENTS, NEW_PASSWORD, OLD, reset_password
from tests.conftest import ApiClient, sign_in

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"


def logout_everywhere(user: User) -> None:
    response = ApiClient(sign_in(user)[1].access_token).post("/api/v1/auth/logout-all")
    assert response.status_code == 204, response.content


SECURITY_EVENTS: dict[str, Callable[[User], None]] = {
    **EVENTS,
    "logout_everywhere": logout_everywhere,
}


def known(user: User, device_id: str, device_key: str) -> bool:
    return sign_in_actions._known_device(user, DeviceInfo(device_id, device_key=device_key))


def signed_in_then_out(user: User, device_id: str) -> str:
    """A session on `device_id` ended by a plain logout; returns its device key."""
    _session, tokens = sign_in(user, device_id=device_id)
    assert ApiClient(tokens.access_token).post("/api/v1/auth/logout").status_code == 204
    assert known(user, device_id, tokens.device_key)
    return tokens.device_key


@pytest.mark.parametrize("event", SECURITY_EVENTS)
def test_a_device_signed_out_before_a_security_event_is_new_after_it(event: str) -> None:
    owner = make_citizen(phone=OLD, totp=False)
    old_key = signed_in_then_out(owner, "old-phone")

    SECURITY_EVENTS[event](owner)

    assert not known(owner, "old-phone", old_key)
    # The session that made the change (password or phone change) keeps its device.
    kept = DeviceSession.objects.filter(user=owner, revoked_at=None)
    assert all(session.device_key_hash for session in kept)
    assert kept.count() == (1 if event in ("password_change", "phone_change") else 0)
    # A device that signs in after the event is known again.
    new_key = signed_in_then_out(owner, "new-phone")
    assert known(owner, "new-phone", new_key)


def test_after_a_password_reset_an_old_device_key_needs_the_second_step_a_new_one_not() -> None:
    owner = make_citizen(phone=OLD, totp=False)
    old_key = signed_in_then_out(owner, "old-phone")
    reset_password(owner)
    api = ApiClient()

    step = api.post(
        LOGIN,
        {"phone": OLD, "password": NEW_PASSWORD, "device_id": "old-phone", "device_key": old_key},
    )

    assert step.status_code == 200, step.content
    assert step.json()["second_factor_required"] is True
    assert step.json()["access_token"] is None
    # The reset's code, then a new one (the reset's notice to the owner is a job of its
    # own, test_security_notices.py).
    codes = [m["purpose"] for m in sms_to(OLD) if not m["purpose"].startswith("notice.")]
    assert codes == ["otp.reset_password", "otp.login"]
    assert not DeviceSession.objects.filter(user=owner, revoked_at=None).exists()
    challenge_id = step.json()["challenge_id"]
    sms_step = {"challenge_id": challenge_id, "method": "sms_otp", "code": last_code(OLD)}
    verified = api.post("/api/v1/auth/login/verify", sms_step)
    assert verified.status_code == 200, verified.content
    new_key = verified.json()["device_key"]  # given after the reset
    signed_out = ApiClient(verified.json()["access_token"]).post("/api/v1/auth/logout")
    assert signed_out.status_code == 204

    again = api.post(
        LOGIN,
        {"phone": OLD, "password": NEW_PASSWORD, "device_id": "old-phone", "device_key": new_key},
    )

    assert again.status_code == 200, again.content
    assert again.json()["second_factor_required"] is False
    assert again.json()["access_token"]
