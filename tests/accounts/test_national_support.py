"""Support resets of accounts linked to a national identity."""

from __future__ import annotations

from typing import Any

import pytest

from auth.models import DeviceSession, NationalIdentity, SupportAuditRecord, User
from fakes.identity_provider import FakeIdentityProvider, default_person
from tests.accounts.conftest import last_code
from tests.accounts.national import LINK_VERIFY, national_callback
from tests.accounts.staff import client_for, make_citizen, make_staff
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

RESETS = "/api/v1/support/resets"


def test_a_reset_of_a_linked_account_keeps_the_identity_and_says_so(
    idp: FakeIdentityProvider,
    api: ApiClient,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    citizen = make_citizen(phone=default_person()["phone_number"])
    link = national_callback(api).json()["link"]
    linked = api.post(
        LINK_VERIFY,
        {"flow_id": link["flow_id"], "method": "sms_otp", "code": last_code(citizen.phone)},
    )
    assert linked.status_code == 200, linked
    citizen.refresh_from_db()
    assert citizen.verification_level == User.Level.IDENTITY  # VNeID level 2
    # The link's code went through the job table (`last_code` runs its job here); the
    # reset's notices go to the embedded queue once the approval commits.
    settings.JOBS_INLINE = True
    opener, approver = make_staff(), make_staff(full_name="Đỗ Văn Duyệt")
    reset = client_for(opener).post(
        RESETS,
        {
            "user_id": str(citizen.id),
            "kind": "lost_phone",
            "reason": "Phone stolen",
            "evidence": "CCCD checked in person at the counter",
            "ticket_number": "HT-2026-0077",
            "new_phone": "0987111222",
        },
    )
    assert reset.json()["requires_approval"] is True
    with django_capture_on_commit_callbacks(execute=True):
        approved = client_for(approver).post(f"{RESETS}/{reset.json()['id']}/approve")

    assert approved.status_code == 200, approved
    assert approved.json()["status"] == "applied"
    applied = SupportAuditRecord.objects.get(action="reset_applied")
    assert applied.details["national_identity"] == {"linked": True, "level": 2, "kept": True}
    assert NationalIdentity.objects.get().user_id == citizen.pk
    assert not DeviceSession.objects.filter(user=citizen, revoked_at=None).exists()

    again = national_callback(api)

    assert again.status_code == 200, again
    session = DeviceSession.objects.get(pk=again.json()["tokens"]["session_id"])
    assert session.user_id == citizen.pk


def test_a_reset_of_an_unlinked_account_notes_no_identity(settings: Any) -> None:
    settings.JOBS_INLINE = True
    citizen = make_citizen()
    staff = make_staff()

    response = client_for(staff).post(
        RESETS,
        {
            "user_id": str(citizen.id),
            "kind": "lost_authenticator",
            "reason": "Phone with the authenticator app was stolen",
            "evidence": "CCCD checked in person at the counter",
            "ticket_number": "HT-2026-0042",
        },
    )

    assert response.status_code == 201, response
    applied = SupportAuditRecord.objects.get(action="reset_applied")
    assert applied.details["national_identity"] == {"linked": False, "level": 0, "kept": False}
