"""Support functions need a recent sign-in with the authenticator code (issue 13 #3).

One rule (`auth.access.require_support_sign_in`) for the support API and the admin's
support pages: a session opened with an SMS code, a recovery code or no second step
at all is refused, and so is one opened more than SUPPORT_SIGN_IN_MAX_AGE_HOURS ago.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pyotp
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from auth import totp
from auth.admin_login import SECOND_FACTOR_SESSION_KEY, second_factor_mark
from auth.models import DeviceSession, SupportAuditRecord, SupportReset, User
from auth.support_api import router as support_router
from tests.accounts.conftest import PASSWORD, device, last_code
from tests.accounts.staff import client_for, enable_real_totp, make_citizen, make_staff
from tests.conftest import ApiClient, sign_in

pytestmark = pytest.mark.django_db

PROOF = "CCCD checked in person at the counter"


def staff_routes() -> list[tuple[str, str]]:
    """Every support route but the citizen's own `my-audit`, read from the router."""
    routes = []
    for path, path_view in support_router.path_operations.items():
        for operation in path_view.operations:
            for method in operation.methods:
                if path != "/my-audit":
                    routes.append((method, "/api/v1/support" + path))
    return sorted(routes)


def call(client: ApiClient, method: str, path: str) -> Any:
    concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
    body = {"note": "x", "user_id": str(uuid.uuid4()), "kind": "locked_out", "reason": "r"}
    if method == "GET":
        return client.get(concrete)
    return client.post(concrete, body)


def level2_reset(opener: User) -> SupportReset:
    subject = make_citizen(level=User.Level.IDENTITY)
    response = client_for(opener).post(
        "/api/v1/support/resets",
        {
            "user_id": str(subject.id),
            "kind": "lost_authenticator",
            "reason": "Phone with the authenticator app was stolen",
            "evidence": PROOF,
            "ticket_number": "HT-2026-0101",
        },
    )
    assert response.status_code == 201, response.content
    return SupportReset.objects.get(pk=response.json()["id"])


def test_the_walk_covers_every_staff_route() -> None:
    routes = staff_routes()
    assert ("POST", "/api/v1/support/resets/{reset_id}/approve") in routes
    assert ("POST", "/api/v1/support/lookup") in routes
    assert len(routes) >= 7


@pytest.mark.parametrize("factor", ["", "sms_otp", "recovery_code"])
def test_every_staff_route_refuses_a_session_without_the_authenticator_code(
    factor: str,
) -> None:
    staff = make_staff()
    _, tokens = sign_in(staff, second_factor=factor)
    client = ApiClient(token=tokens.access_token, language="en")
    for method, path in staff_routes():
        response = call(client, method, path)
        assert response.status_code == 403, (method, path, response.content)
        assert response.json()["code"] == "second_factor_sign_in_required", (method, path)
    assert SupportAuditRecord.objects.count() == 0


def test_an_sms_signed_in_staff_member_cannot_approve_a_level_2_reset() -> None:
    """The attack of the report: TOTP set up, signed in with an SMS code, approves."""
    reset = level2_reset(make_staff())
    approver = make_staff()
    _, tokens = sign_in(approver, second_factor="sms_otp")
    response = ApiClient(token=tokens.access_token).post(
        f"/api/v1/support/resets/{reset.id}/approve"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "second_factor_sign_in_required"
    reset.refresh_from_db()
    assert reset.status == SupportReset.Status.PENDING
    assert reset.approved_by is None
    assert not SupportAuditRecord.objects.filter(reset=reset, action="reset_approved").exists()


def test_a_totp_session_approves() -> None:
    reset = level2_reset(make_staff())
    response = client_for(make_staff()).post(f"/api/v1/support/resets/{reset.id}/approve")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"


def test_support_sign_in_age_is_checked_at_the_boundary(settings: Any) -> None:
    settings.SUPPORT_SIGN_IN_MAX_AGE_HOURS = 12
    staff = make_staff()
    session, tokens = sign_in(staff, second_factor="totp")
    client = ApiClient(token=tokens.access_token)
    now = timezone.now()
    DeviceSession.objects.filter(pk=session.pk).update(
        second_factor_at=now - dt.timedelta(hours=12) + dt.timedelta(minutes=1)
    )
    assert client.get("/api/v1/support/resets").status_code == 200
    DeviceSession.objects.filter(pk=session.pk).update(
        second_factor_at=now - dt.timedelta(hours=12, minutes=1)
    )
    refused = client.get("/api/v1/support/resets")
    assert refused.status_code == 403
    assert refused.json()["code"] == "support_sign_in_expired"


def test_reauthenticating_with_the_password_does_not_renew_support_access(
    settings: Any,
) -> None:
    staff = make_staff()
    session, tokens = sign_in(staff, second_factor="totp")
    old = timezone.now() - dt.timedelta(hours=settings.SUPPORT_SIGN_IN_MAX_AGE_HOURS + 1)
    DeviceSession.objects.filter(pk=session.pk).update(second_factor_at=old, authenticated_at=old)
    client = ApiClient(token=tokens.access_token)
    assert client.post("/api/v1/auth/reauthenticate", {"password": PASSWORD}).status_code == 204
    assert client.get("/api/v1/support/resets").json()["code"] == "support_sign_in_expired"


def test_a_citizen_still_reads_their_own_support_audit() -> None:
    citizen = make_citizen()
    _, tokens = sign_in(citizen)
    assert ApiClient(token=tokens.access_token).get("/api/v1/support/my-audit").status_code == 200


def _api_login(api: ApiClient, phone: str, dev: dict[str, Any], factor: str) -> Any:
    body = {"phone": phone, "password": PASSWORD, **dev, "second_factor": factor}
    return api.post("/api/v1/auth/login", body)


def test_staff_take_the_second_step_even_on_a_known_device_and_sms_opens_no_support() -> None:
    staff = make_staff(totp=False)
    secret = enable_real_totp(staff)
    api = ApiClient()
    dev = device("staff-laptop")
    first = _api_login(api, staff.phone, dev, "totp")
    assert first.status_code == 200
    verified = api.post(
        "/api/v1/auth/login/verify",
        {
            "challenge_id": first.json()["challenge_id"],
            "method": "totp",
            "code": pyotp.TOTP(secret).generate_otp(totp.time_step()),
        },
    )
    assert verified.status_code == 200, verified.content
    tokens = verified.json()
    assert DeviceSession.objects.get(pk=tokens["session_id"]).second_factor == "totp"
    with_totp = ApiClient(token=tokens["access_token"])
    assert with_totp.get("/api/v1/support/resets").status_code == 200

    # The same device again, with its device key: staff still get a challenge.
    again = _api_login(api, staff.phone, {**dev, "device_key": tokens["device_key"]}, "sms_otp")
    assert again.status_code == 200
    assert again.json()["second_factor_required"] is True
    assert again.json()["access_token"] is None
    by_sms = api.post(
        "/api/v1/auth/login/verify",
        {
            "challenge_id": again.json()["challenge_id"],
            "method": "sms_otp",
            "code": last_code(staff.phone),
        },
    )
    assert by_sms.status_code == 200, by_sms.content
    sms_client = ApiClient(token=by_sms.json()["access_token"])
    refused = sms_client.get("/api/v1/support/resets")
    assert refused.status_code == 403
    assert refused.json()["code"] == "second_factor_sign_in_required"


def _admin_client(user: User, mark: dict[str, str] | None) -> Client:
    client = Client()
    client.force_login(user)
    if mark is not None:
        session = client.session
        session[SECOND_FACTOR_SESSION_KEY] = mark
        session.save()
    return client


def test_admin_support_pages_follow_the_same_age_rule(settings: Any) -> None:
    staff = make_staff()
    fresh = _admin_client(staff, second_factor_mark(str(staff.pk), "totp"))
    assert fresh.get(reverse("admin:accounts_support_lookup")).status_code == 200
    old_at = timezone.now() - dt.timedelta(hours=settings.SUPPORT_SIGN_IN_MAX_AGE_HOURS, minutes=1)
    stale_mark = {"user": str(staff.pk), "factor": "totp", "at": old_at.isoformat()}
    stale = _admin_client(staff, stale_mark)
    response = stale.get(reverse("admin:accounts_support_lookup"))
    assert response.status_code == 403
    assert "support_sign_in_expired" in response.content.decode()


def test_admin_session_of_the_old_shape_is_refused() -> None:
    """A mark written before this change (a bare user id) opens nothing."""
    staff = make_staff()
    client = _admin_client(staff, None)
    session = client.session
    session["accounts.admin_second_factor_user"] = str(staff.pk)
    session.save()
    response = client.get(reverse("admin:accounts_support_lookup"))
    assert response.status_code == 403
    assert "second_factor_sign_in_required" in response.content.decode()
