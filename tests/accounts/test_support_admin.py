"""The Django admin's support pages: same actions, same rules, audited as 'admin'."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from auth.actions import sign_in as sign_in_actions
from auth.actions.sign_in import DeviceInfo
from auth.admin_login import SECOND_FACTOR_SESSION_KEY, second_factor_mark
from auth.models import DeviceSession, SupportAuditRecord, SupportReset, User
from tests.accounts.staff import TOTP_CIPHERTEXT, make_citizen, make_staff
from tests.conftest import sign_in
from tests.factories import make_organisation

pytestmark = pytest.mark.django_db

PROOF = "CCCD checked in person at the counter"


def admin_client(user: User) -> Client:
    """Signed in as after the admin login with an authenticator code."""
    client = Client()
    client.force_login(user)
    session = client.session
    session[SECOND_FACTOR_SESSION_KEY] = second_factor_mark(str(user.pk), "totp")
    session.save()
    return client


def reset_form(**overrides: str) -> dict[str, str]:
    data = {
        "kind": "lost_authenticator",
        "reason": "Mất điện thoại có ứng dụng xác thực",
        "evidence": PROOF,
        "ticket_number": "HT-2026-0007",
        "new_phone": "",
        "open": "1",
    }
    data.update(overrides)
    return data


def test_support_staff_look_up_an_account_in_the_admin() -> None:
    citizen = make_citizen(phone="+84912345678")
    staff = make_staff()
    client = admin_client(staff)
    url = reverse("admin:accounts_support_lookup")
    assert client.get(url).status_code == 200
    response = client.post(url, {"phone": "0912345678", "lookup": "1"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "+8491•••5678" in page
    assert "+84912345678" not in page
    assert reverse("admin:accounts_support_reset", args=[citizen.pk]) in page
    record = SupportAuditRecord.objects.get()
    assert (record.actor_id, record.action, record.subject_id, record.channel) == (
        staff.id,
        "lookup",
        citizen.id,
        "admin",
    )


def test_admin_support_pages_refuse_staff_without_totp() -> None:
    citizen = make_citizen()
    client = admin_client(make_staff(totp=False))
    lookup = client.get(reverse("admin:accounts_support_lookup"))
    assert lookup.status_code == 403
    assert "totp_required" in lookup.content.decode()
    opened = client.post(reverse("admin:accounts_support_reset", args=[citizen.pk]), reset_form())
    assert opened.status_code == 403
    assert SupportReset.objects.count() == 0
    assert SupportAuditRecord.objects.count() == 0


def test_admin_support_pages_refuse_staff_without_the_permission() -> None:
    citizen = make_citizen()
    client = admin_client(make_staff(support=False))
    response = client.get(reverse("admin:accounts_support_reset", args=[citizen.pk]))
    assert response.status_code == 403
    assert "not_support_staff" in response.content.decode()


def test_admin_reset_without_evidence_is_refused_and_changes_nothing() -> None:
    citizen = make_citizen()
    client = admin_client(make_staff())
    response = client.post(
        reverse("admin:accounts_support_reset", args=[citizen.pk]), reset_form(evidence="")
    )
    assert response.status_code == 200
    assert "evidence_required" in response.content.decode()
    assert SupportReset.objects.count() == 0
    citizen.refresh_from_db()
    assert citizen.totp_secret == TOTP_CIPHERTEXT


def test_admin_refuses_a_reset_of_ones_own_account() -> None:
    staff = make_staff()
    response = admin_client(staff).post(
        reverse("admin:accounts_support_reset", args=[staff.pk]), reset_form()
    )
    assert response.status_code == 403
    assert "self_reset" in response.content.decode()
    assert SupportReset.objects.count() == 0


def test_admin_two_person_reset_of_a_level2_account() -> None:
    citizen = make_citizen(level=User.Level.IDENTITY)
    sign_in(citizen)
    opener, approver = make_staff(), make_staff()
    opened = admin_client(opener).post(
        reverse("admin:accounts_support_reset", args=[citizen.pk]), reset_form()
    )
    assert opened.status_code == 302
    reset = SupportReset.objects.get()
    assert opened["Location"] == reverse("admin:accounts_supportreset_change", args=[reset.pk])
    assert reset.status == "pending"
    decide = reverse("admin:accounts_supportreset_decide", args=[reset.pk])
    # The opener may look at it but not approve it.
    assert admin_client(opener).get(decide).status_code == 200
    self_approved = admin_client(opener).post(decide, {"approve": "1", "note": ""})
    assert self_approved.status_code == 403
    assert "self_approval" in self_approved.content.decode()
    reset.refresh_from_db()
    assert reset.status == "pending"
    assert DeviceSession.objects.filter(user=citizen, revoked_at=None).count() == 1
    # A second staff member approves: the reset applies.
    approved = admin_client(approver).post(decide, {"approve": "1", "note": ""})
    assert approved.status_code == 302
    reset.refresh_from_db()
    assert (reset.status, reset.approved_by_id) == ("applied", approver.id)
    citizen.refresh_from_db()
    assert citizen.has_totp is False
    assert citizen.must_reset_password is True
    assert DeviceSession.objects.filter(user=citizen, revoked_at=None).count() == 0
    assert list(
        SupportAuditRecord.objects.filter(subject=citizen)
        .order_by("id")
        .values_list("action", "channel")
    ) == [
        ("reset_opened", "admin"),
        ("lookup", "admin"),  # the opener's look at the decision page
        ("reset_approved", "admin"),
        ("reset_applied", "admin"),
    ]


def test_admin_rejection_needs_a_note() -> None:
    citizen = make_citizen(level=User.Level.IDENTITY)
    admin_client(make_staff()).post(
        reverse("admin:accounts_support_reset", args=[citizen.pk]), reset_form()
    )
    reset = SupportReset.objects.get()
    decide = reverse("admin:accounts_supportreset_decide", args=[reset.pk])
    checker = admin_client(make_staff())
    empty = checker.post(decide, {"reject": "1", "note": ""})
    assert empty.status_code == 200
    assert "note_required" in empty.content.decode()
    done = checker.post(decide, {"reject": "1", "note": "Giấy tờ không khớp"})
    assert done.status_code == 302
    reset.refresh_from_db()
    assert (reset.status, reset.decision_note) == ("rejected", "Giấy tờ không khớp")


def test_admin_shows_the_audit_trail_read_only() -> None:
    citizen = make_citizen()
    staff = make_staff()
    client = admin_client(staff)
    client.post(reverse("admin:accounts_support_lookup"), {"phone": citizen.phone})
    record = SupportAuditRecord.objects.get()
    changelist = client.get(reverse("admin:accounts_supportauditrecord_changelist"))
    assert changelist.status_code == 200
    assert reverse("admin:accounts_supportauditrecord_change", args=[record.pk]) in (
        changelist.content.decode()
    )
    detail = client.get(reverse("admin:accounts_supportauditrecord_change", args=[record.pk]))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert client.get(reverse("admin:accounts_supportauditrecord_add")).status_code == 403
    deleted = client.post(
        reverse("admin:accounts_supportauditrecord_delete", args=[record.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 403
    assert SupportAuditRecord.objects.filter(pk=record.pk).count() == 1


def test_superuser_admin_pages_for_users_organisations_and_sessions_load() -> None:
    root = make_staff(is_superuser=True)
    citizen = make_citizen()
    sign_in(citizen)
    organisation = make_organisation(citizen)
    client = admin_client(root)
    for url in (
        reverse("admin:accounts_user_changelist") + "?q=" + citizen.phone[1:],
        reverse("admin:accounts_user_change", args=[citizen.pk]),
        reverse("admin:accounts_organisation_change", args=[organisation.pk]),
        reverse("admin:accounts_membership_changelist"),
        reverse("admin:accounts_invitation_changelist"),
        reverse("admin:accounts_devicesession_changelist"),
        reverse("admin:accounts_supportreset_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert TOTP_CIPHERTEXT not in response.content.decode()
        assert citizen.password not in response.content.decode()


def test_admin_support_reset_page_of_an_unknown_account_is_404() -> None:
    response = admin_client(make_staff()).get(
        reverse("admin:accounts_support_reset", args=["00000000-0000-0000-0000-000000000000"])
    )
    assert response.status_code == 404


def test_support_staff_cannot_edit_phone_or_privileges_in_the_user_admin() -> None:
    from django.contrib.auth.models import Permission

    staff = make_staff()
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="change_user")
    )
    citizen = make_citizen(phone="+84912345678")
    url = reverse("admin:accounts_user_change", args=[citizen.pk])
    client = admin_client(staff)
    page = client.get(url).content.decode()
    assert 'name="phone"' not in page
    assert 'name="is_staff"' not in page
    client.post(url, {"full_name": "Tên Mới", "language": "vi", "phone": "+84987000000"})
    citizen.refresh_from_db()
    assert citizen.phone == "+84912345678"
    assert citizen.is_staff is False


def test_admin_action_revokes_selected_sessions() -> None:
    citizen = make_citizen()
    session, _ = sign_in(citizen)
    root = make_staff(is_superuser=True)
    response = admin_client(root).post(
        reverse("admin:accounts_devicesession_changelist"),
        {"action": "revoke_sessions", "_selected_action": [str(session.pk)]},
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.revoked_reason, session.revoked_at is not None) == ("admin", True)


def test_a_session_revoked_in_the_admin_no_longer_vouches_for_its_device() -> None:
    citizen = make_citizen()
    session, tokens = sign_in(citizen, device_id="stolen-phone")
    stolen = DeviceInfo("stolen-phone", device_key=tokens.device_key)
    assert sign_in_actions._known_device(citizen, stolen)

    response = admin_client(make_staff(is_superuser=True)).post(
        reverse("admin:accounts_devicesession_changelist"),
        {"action": "revoke_sessions", "_selected_action": [str(session.pk)]},
    )

    assert response.status_code == 302
    assert not sign_in_actions._known_device(citizen, stolen)
