"""A sign-up that never verified its number does not own it, even after support staff
looked it up: the audit trail of the look-up protects the account row, so the number
is taken from it (the account stays, deactivated) instead of the row being deleted.

Anyone can start a sign-up on someone else's number; one support look-up of it must
not block that number for a phone change, a support reset or a national sign-in.
"""

from __future__ import annotations

import pytest

from auth.actions.phone_numbers import released_phone
from auth.models import SupportAuditRecord, User
from fakes.identity_provider import FakeIdentityProvider, default_person
from tests.accounts.conftest import PASSWORD, last_code
from tests.accounts.national import national_callback
from tests.accounts.staff import client_for, make_citizen, make_staff
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

NUMBER = "+84987654321"  # also the fake national identity's number


def looked_up_pending_sign_up(phone: str = NUMBER) -> User:
    pending = User.objects.create_user(phone, "x-Str0ng-pass", full_name="Người Lạ")
    looked_up = client_for(make_staff()).post("/api/v1/support/lookup", {"phone": phone})
    assert looked_up.status_code == 200
    assert SupportAuditRecord.objects.filter(subject=pending).exists()
    return pending


def assert_released(pending: User, owner: User) -> None:
    assert list(User.objects.filter(phone=NUMBER)) == [owner]
    pending.refresh_from_db()
    assert pending.phone == released_phone(pending)
    assert pending.is_active is False
    assert not pending.has_usable_password()
    # The audit trail still names the account it was about.
    assert SupportAuditRecord.objects.filter(subject=pending).exists()


def test_a_support_reset_to_the_number_of_a_looked_up_sign_up_moves_the_citizen() -> None:
    pending = looked_up_pending_sign_up()
    citizen = make_citizen(phone="+84912340077")
    response = client_for(make_staff()).post(
        "/api/v1/support/resets",
        {
            "user_id": str(citizen.id),
            "kind": "new_phone_number",
            "reason": "Đổi số",
            "evidence": "CCCD checked",
            "ticket_number": "T-9",
            "new_phone": NUMBER,
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "applied"
    assert_released(pending, citizen)


def test_a_phone_change_to_the_number_of_a_looked_up_sign_up_goes_through() -> None:
    pending = looked_up_pending_sign_up()
    user = make_user("+84912345678")
    api = ApiClient(sign_in(user)[1].access_token)
    started = api.post("/api/v1/auth/phone/change", {"new_phone": NUMBER, "password": PASSWORD})
    assert started.status_code == 202
    done = api.post(
        "/api/v1/auth/phone/change/verify",
        {"challenge_id": started.json()["challenge_id"], "code": last_code(NUMBER)},
    )
    assert done.status_code == 200, done.content
    assert_released(pending, user)


def test_a_first_national_sign_in_with_the_number_of_a_looked_up_sign_up_creates_the_account(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    assert default_person()["phone_number"] == NUMBER
    pending = looked_up_pending_sign_up()
    response = national_callback(api)
    assert response.status_code == 200, response
    assert response.json()["account_created"] is True
    assert_released(pending, User.objects.get(phone=NUMBER))


def test_a_pending_sign_up_nobody_looked_up_is_still_deleted() -> None:
    pending = User.objects.create_user(NUMBER, "x-Str0ng-pass", full_name="Người Lạ")
    user = make_user("+84912345678")
    api = ApiClient(sign_in(user)[1].access_token)
    started = api.post("/api/v1/auth/phone/change", {"new_phone": NUMBER, "password": PASSWORD})
    api.post(
        "/api/v1/auth/phone/change/verify",
        {"challenge_id": started.json()["challenge_id"], "code": last_code(NUMBER)},
    )
    assert not User.objects.filter(pk=pending.pk).exists()
    assert list(User.objects.filter(phone=NUMBER)) == [user]
