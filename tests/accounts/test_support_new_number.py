"""After a support reset moved an account to a new number, the citizen gets back in
through password reset on that number; signing up again never takes it over."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone

from auth.models import DeviceSession, SupportReset, User
from tests.accounts.conftest import PASSWORD, all_sms, device, last_code, register, sms_to
from tests.accounts.staff import make_citizen, make_staff, move_to_new_number
from tests.conftest import ApiClient, make_user

pytestmark = pytest.mark.django_db

OLD = "+84912345678"
NEW = "+84987111222"
NEW_PASSWORD = "Fresh-Str0ng-pass"


def test_the_new_number_is_verified_by_the_reset_and_password_reset_serves_it() -> None:
    citizen = make_citizen(phone=OLD, full_name="Trần Văn Bình")
    move_to_new_number(citizen)
    citizen.refresh_from_db()
    assert citizen.phone == NEW
    assert citizen.phone_verified_at is not None
    assert citizen.must_reset_password is True

    api = ApiClient()
    # Sign-in is refused until the password is reset, and says what to do.
    refused = api.post("/api/v1/auth/login", {"phone": NEW, "password": PASSWORD, **device()})
    assert refused.status_code == 403
    assert refused.json()["code"] == "password_reset_required"
    started = api.post("/api/v1/auth/password/reset", {"phone": "0987111222"})
    assert started.status_code == 202
    # The reset's own notice to the new number, and the code (first: codes go first).
    assert sorted(m["purpose"] for m in sms_to(NEW)) == [
        "notice.support_reset",
        "otp.reset_password",
    ]
    done = api.post(
        "/api/v1/auth/password/reset/verify",
        {
            "challenge_id": started.json()["challenge_id"],
            "code": last_code(NEW),
            "new_password": NEW_PASSWORD,
        },
    )
    assert done.status_code == 204, done.content
    # First sign-in: a new device, a code to the new number.
    login = api.post("/api/v1/auth/login", {"phone": NEW, "password": NEW_PASSWORD, **device()})
    assert login.status_code == 200
    assert login.json()["second_factor_required"] is True
    tokens = api.post(
        "/api/v1/auth/login/verify",
        {"challenge_id": login.json()["challenge_id"], "method": "sms_otp", "code": last_code(NEW)},
    )
    assert tokens.status_code == 200, tokens.content
    me = ApiClient(token=tokens.json()["access_token"]).get("/api/v1/auth/me").json()
    assert (me["id"], me["full_name"], me["phone"]) == (str(citizen.id), "Trần Văn Bình", NEW)


def test_signing_up_again_on_the_new_number_does_not_take_the_account_over() -> None:
    citizen = make_citizen(phone=OLD, full_name="Trần Văn Bình")
    move_to_new_number(citizen)
    citizen.refresh_from_db()
    password_hash = citizen.password
    before = len(all_sms())

    response = register(ApiClient(), "0987111222", full_name="Kẻ Mạo Danh")

    assert response.status_code == 202, response.content
    citizen.refresh_from_db()
    assert citizen.full_name == "Trần Văn Bình"
    assert citizen.password == password_hash
    assert User.objects.filter(phone=NEW).count() == 1
    texts = all_sms()[before:]
    assert [m["purpose"] for m in texts] == ["notice.already_registered"]


def test_an_account_ever_in_use_is_never_rewritten_by_a_sign_up_even_unverified() -> None:
    """The state the old reset left behind (unverified number, sessions in the past)."""
    citizen = make_user(NEW, full_name="Trần Văn Bình", level=User.Level.UNVERIFIED)
    DeviceSession.objects.create(user=citizen, device_id="old", revoked_at=timezone.now())
    password_hash = citizen.password

    register(ApiClient(), "0987111222", full_name="Kẻ Mạo Danh")

    citizen.refresh_from_db()
    assert (citizen.full_name, citizen.password) == ("Trần Văn Bình", password_hash)
    assert citizen.phone_verified_at is None


def test_a_pending_sign_up_still_restarts_with_new_details(settings: Any) -> None:
    settings.SMS_RESEND_SECONDS = 0
    register(ApiClient(), "0987111222", full_name="Lần Một")
    register_again = register(ApiClient(), "0987111222", full_name="Lần Hai")
    assert register_again.status_code == 202
    assert User.objects.get(phone=NEW).full_name == "Lần Hai"


def test_a_pending_sign_up_on_the_new_number_does_not_block_the_reset() -> None:
    register(ApiClient(), "0987111222", full_name="Chưa Xác Minh")
    citizen = make_citizen(phone=OLD)
    move_to_new_number(citizen)
    assert list(User.objects.filter(phone=NEW).values_list("pk", flat=True)) == [citizen.pk]


def test_the_migration_verifies_numbers_an_applied_reset_set(settings: Any) -> None:
    citizen = make_citizen(phone=NEW)
    staff = make_staff()
    applied_at = timezone.now()
    SupportReset.objects.create(
        user=citizen,
        kind="lost_phone",
        reason="r",
        evidence="e",
        ticket_number="t",
        new_phone=NEW,
        status=SupportReset.Status.APPLIED,
        applied_at=applied_at,
        opened_by=staff,
        opened_at=applied_at,
    )
    User.objects.filter(pk=citizen.pk).update(phone_verified_at=None)
    untouched = make_user("+84987000333", level=User.Level.UNVERIFIED)
    migration = importlib.import_module("auth.migrations.0009_verify_numbers_set_by_support")

    migration.verify_moved_numbers(apps, None)

    citizen.refresh_from_db()
    untouched.refresh_from_db()
    assert citizen.phone_verified_at == applied_at
    assert untouched.phone_verified_at is None
