"""Support staff look up accounts and reset them under audited, two-person rules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from auth.models import DeviceSession, RecoveryCode, SupportAuditRecord, SupportReset, User
from auth.sms import read_outbox
from tests.accounts.staff import (
    RECOVERY_HASH,
    TOTP_CIPHERTEXT,
    client_for,
    make_citizen,
    make_staff,
)
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

LOOKUP = "/api/v1/support/lookup"
RESETS = "/api/v1/support/resets"
EVIDENCE = "CCCD checked in person at the counter"


def reset_body(citizen: User, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": str(citizen.id),
        "kind": "lost_authenticator",
        "reason": "Phone with the authenticator app was stolen",
        "evidence": EVIDENCE,
        "ticket_number": "HT-2026-0042",
    }
    body.update(overrides)
    return body


@pytest.fixture
def inline_jobs(embedded_jobs: Any) -> Any:
    """Run the deferred jobs (the SMS notices) on the embedded queue after the call."""

    def run(call: Any) -> Any:
        result = call()
        embedded_jobs.wait_idle()
        return result

    return run


def actions_on(user: User) -> list[str]:
    return list(
        SupportAuditRecord.objects.filter(subject=user)
        .order_by("id")
        .values_list("action", flat=True)
    )


def assert_untouched(citizen: User, *, phone: str) -> None:
    citizen.refresh_from_db()
    assert citizen.totp_secret == TOTP_CIPHERTEXT
    assert citizen.totp_confirmed_at is not None
    assert citizen.must_reset_password is False
    assert citizen.phone == phone
    assert RecoveryCode.objects.filter(user=citizen, used_at=None).count() == 2
    assert DeviceSession.objects.filter(user=citizen, revoked_at=None).count() >= 1


def assert_reset(citizen: User) -> None:
    citizen.refresh_from_db()
    assert citizen.totp_secret == ""
    assert citizen.totp_confirmed_at is None
    assert citizen.totp_last_step is None
    assert citizen.must_reset_password is True
    assert RecoveryCode.objects.filter(user=citizen, used_at=None).count() == 0
    assert DeviceSession.objects.filter(user=citizen, revoked_at=None).count() == 0
    assert set(
        DeviceSession.objects.filter(user=citizen).values_list("revoked_reason", flat=True)
    ) == {"support_reset"}


# --- Who may use support functions ------------------------------------------------------


def test_citizens_are_refused_every_support_function() -> None:
    citizen = make_citizen()
    client = client_for(make_user())
    for response in (
        client.post(LOOKUP, {"phone": citizen.phone}),
        client.post(RESETS, reset_body(citizen)),
        client.get(RESETS),
        client.get("/api/v1/support/audit"),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "not_support_staff"
    assert SupportAuditRecord.objects.count() == 0
    assert SupportReset.objects.count() == 0


def test_staff_without_the_support_permission_are_refused() -> None:
    citizen = make_citizen()
    response = client_for(make_staff(support=False)).post(LOOKUP, {"phone": citizen.phone})
    assert response.status_code == 403
    assert response.json()["code"] == "not_support_staff"
    assert SupportAuditRecord.objects.count() == 0


def test_support_staff_without_totp_are_refused_403_totp_required() -> None:
    citizen = make_citizen(level=User.Level.IDENTITY)
    opener = make_staff()
    reset = client_for(opener).post(RESETS, reset_body(citizen)).json()
    client = client_for(make_staff(totp=False))
    for response in (
        client.post(LOOKUP, {"phone": citizen.phone}),
        client.post(RESETS, reset_body(make_citizen())),
        client.post(f"{RESETS}/{reset['id']}/approve"),
        client.post(f"{RESETS}/{reset['id']}/reject", {"note": "không đủ giấy tờ"}),
        client.get(RESETS),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "totp_required"
    assert SupportReset.objects.get().status == "pending"
    assert actions_on(citizen) == ["reset_opened"]


def test_the_permission_may_be_granted_to_the_user_directly() -> None:
    staff = make_staff(support=False)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="support_reset")
    )
    citizen = make_citizen()
    assert client_for(staff).post(LOOKUP, {"phone": citizen.phone}).status_code == 200


# --- Look-up -----------------------------------------------------------------------------


def test_lookup_by_phone_returns_masked_data_and_is_audited() -> None:
    citizen = make_citizen(phone="+84912345678", full_name="Lê Thị Hoa", citizen_id="001190012345")
    staff = make_staff()
    response = client_for(staff).post(LOOKUP, {"phone": "0912 345 678"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(citizen.id)
    assert body["phone_masked"] == "+8491•••5678"
    assert body["full_name_masked"] == "L. T. Hoa"
    assert body["citizen_id_masked"] == "•••••••••345"
    assert body["has_totp"] is True
    assert body["verification_level"] == 1
    assert "+84912345678" not in response.content.decode()
    assert "001190012345" not in response.content.decode()
    record = SupportAuditRecord.objects.get()
    assert (record.actor_id, record.action, record.subject_id, record.channel) == (
        staff.id,
        "lookup",
        citizen.id,
        "api",
    )
    assert record.details == {"by": "phone", "found": True}


def test_lookup_by_citizen_id() -> None:
    citizen = make_citizen(citizen_id="079201000123")
    response = client_for(make_staff()).post(LOOKUP, {"citizen_id": "079201000123"})
    assert response.status_code == 200
    assert response.json()["id"] == str(citizen.id)


@pytest.mark.parametrize("written", ["SĐT 0912 345 678", "T912-345678"])
def test_a_phone_written_with_letters_finds_no_one_and_is_no_look_up(written: str) -> None:
    # Read past its letters, the text was the citizen's number.
    make_citizen(phone="+84912345678")
    response = client_for(make_staff()).post(LOOKUP, {"phone": written})
    assert response.status_code == 422
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [
        ("phone", "invalid_phone")
    ]
    assert SupportAuditRecord.objects.count() == 0


def test_a_failed_lookup_is_audited_without_the_searched_value() -> None:
    staff = make_staff()
    response = client_for(staff).post(LOOKUP, {"citizen_id": "079201999999"})
    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
    record = SupportAuditRecord.objects.get()
    assert (record.action, record.subject_id, record.details) == (
        "lookup",
        None,
        {"by": "citizen_id", "found": False},
    )
    assert "079201999999" not in json.dumps(record.details)


def test_a_citizen_id_in_full_width_digits_is_invalid_and_no_look_up() -> None:
    # No account holds one (`auth.citizen_ids` keeps ASCII digits): as a phone number
    # in full-width digits is no phone, it is no citizen ID to look up.
    make_citizen(citizen_id="079201000123")
    response = client_for(make_staff()).post(LOOKUP, {"citizen_id": "０７９２０１０００１２３"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_citizen_id"
    assert SupportAuditRecord.objects.count() == 0


def test_lookup_needs_exactly_one_key() -> None:
    response = client_for(make_staff()).post(LOOKUP, {})
    assert response.status_code == 422
    assert response.json()["code"] == "lookup_needs_one_key"
    assert SupportAuditRecord.objects.count() == 0


# --- Opening a reset ---------------------------------------------------------------------


@pytest.mark.parametrize("evidence", [None, "", "   "])
def test_a_reset_without_proofing_evidence_is_422(evidence: str | None) -> None:
    citizen = make_citizen()
    sign_in(citizen)
    body = reset_body(citizen, evidence=evidence)
    if evidence is None:
        del body["evidence"]
    response = client_for(make_staff()).post(RESETS, body)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "evidence"
    assert SupportReset.objects.count() == 0
    assert SupportAuditRecord.objects.count() == 0
    assert_untouched(citizen, phone=citizen.phone)


@pytest.mark.parametrize("field", ["reason", "ticket_number"])
def test_a_reset_needs_a_reason_and_a_ticket(field: str) -> None:
    citizen = make_citizen()
    response = client_for(make_staff()).post(RESETS, reset_body(citizen, **{field: " "}))
    assert response.status_code == 422
    assert response.json()["code"] == f"{field}_required"
    assert SupportReset.objects.count() == 0


def test_a_new_number_reset_needs_a_valid_free_number() -> None:
    citizen = make_citizen()
    taken = make_user(phone="+84987000999")
    client = client_for(make_staff())
    missing = client.post(RESETS, reset_body(citizen, kind="new_phone_number"))
    assert missing.status_code == 422
    assert missing.json()["code"] == "new_phone_required"
    invalid = client.post(RESETS, reset_body(citizen, kind="new_phone_number", new_phone="123"))
    assert invalid.status_code == 422
    assert invalid.json()["code"] == "validation_error"
    assert invalid.json()["details"][0] == {
        "field": "new_phone",
        "location": "body",
        "code": "invalid_phone",
        "message": invalid.json()["details"][0]["message"],
    }
    clash = client.post(RESETS, reset_body(citizen, kind="new_phone_number", new_phone=taken.phone))
    assert clash.status_code == 409
    assert clash.json()["code"] == "phone_taken"
    assert SupportReset.objects.count() == 0


def test_a_new_number_written_with_letters_is_an_invalid_phone() -> None:
    citizen = make_citizen()
    response = client_for(make_staff()).post(
        RESETS, reset_body(citizen, kind="new_phone_number", new_phone="SĐT 0987 000 999")
    )
    assert response.status_code == 422
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [
        ("new_phone", "invalid_phone")
    ]
    assert SupportReset.objects.count() == 0


def test_nobody_resets_their_own_account() -> None:
    staff = make_staff()
    response = client_for(staff).post(RESETS, reset_body(staff))
    assert response.status_code == 403
    assert response.json()["code"] == "self_reset"
    assert SupportReset.objects.count() == 0
    staff.refresh_from_db()
    assert staff.totp_confirmed_at is not None


def test_staff_accounts_are_not_reset_through_support() -> None:
    colleague = make_staff()
    response = client_for(make_staff()).post(RESETS, reset_body(colleague))
    assert response.status_code == 403
    assert response.json()["code"] == "staff_account"
    colleague.refresh_from_db()
    assert colleague.has_totp is True


def test_unknown_account_is_404() -> None:
    body = reset_body(make_citizen(), user_id="00000000-0000-0000-0000-000000000000")
    assert client_for(make_staff()).post(RESETS, body).status_code == 404


# --- Level 1: applied by the opener -------------------------------------------------------


def test_level1_reset_is_applied_at_once_and_revokes_sessions(inline_jobs: Any) -> None:
    citizen = make_citizen(phone="+84912345678")
    _, tokens = sign_in(citizen)
    citizen_api = ApiClient(token=tokens.access_token)
    assert citizen_api.get("/api/v1/organisations").status_code == 200
    staff = make_staff()
    response = inline_jobs(lambda: client_for(staff).post(RESETS, reset_body(citizen)))
    assert response.status_code == 201, response
    body = response.json()
    assert (body["status"], body["requires_approval"]) == ("applied", False)
    assert_reset(citizen)
    assert citizen.phone == "+84912345678"
    assert citizen_api.get("/api/v1/organisations").status_code == 401
    assert actions_on(citizen) == ["reset_opened", "reset_applied"]
    applied = SupportAuditRecord.objects.get(action="reset_applied")
    assert (applied.actor_id, applied.approver_id, applied.evidence) == (staff.id, None, EVIDENCE)
    assert applied.details["sessions_revoked"] == 1
    assert applied.details["recovery_codes_invalidated"] == 2
    sms = read_outbox()
    assert [(m["to"], m["purpose"]) for m in sms] == [("+84912345678", "notice.support_reset")]
    assert sms[0]["text"].startswith("Tai khoan Dich vu cong")  # vi, no diacritics


# --- Level 2: a second staff member approves ----------------------------------------------


def test_level2_reset_waits_for_a_second_approver_and_changes_nothing(inline_jobs: Any) -> None:
    citizen = make_citizen(level=User.Level.IDENTITY, phone="+84912345678")
    _, tokens = sign_in(citizen)
    citizen_api = ApiClient(token=tokens.access_token)
    opener = make_staff()
    response = inline_jobs(
        lambda: client_for(opener).post(
            RESETS, reset_body(citizen, kind="lost_phone", new_phone="0987 111 222")
        )
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["requires_approval"]) == ("pending", True)
    assert body["new_phone_masked"] == "+8498•••1222"
    assert_untouched(citizen, phone="+84912345678")
    assert citizen_api.get("/api/v1/organisations").status_code == 200
    assert read_outbox() == []
    assert actions_on(citizen) == ["reset_opened"]


def test_the_opener_cannot_approve_their_own_reset() -> None:
    citizen = make_citizen(level=User.Level.IDENTITY)
    sign_in(citizen)
    opener_api = client_for(make_staff())
    reset = opener_api.post(RESETS, reset_body(citizen)).json()
    response = opener_api.post(f"{RESETS}/{reset['id']}/approve")
    assert response.status_code == 403
    assert response.json()["code"] == "self_approval"
    assert SupportReset.objects.get().status == "pending"
    assert_untouched(citizen, phone=citizen.phone)
    rejected = opener_api.post(f"{RESETS}/{reset['id']}/reject", {"note": "nhầm"})
    assert rejected.status_code == 403
    assert rejected.json()["code"] == "self_approval"


def test_a_second_staff_member_approves_and_the_reset_applies(inline_jobs: Any) -> None:
    citizen = make_citizen(level=User.Level.IDENTITY, phone="+84912345678")
    _, tokens = sign_in(citizen)
    citizen_api = ApiClient(token=tokens.access_token)
    opener, approver = make_staff(), make_staff(full_name="Đỗ Văn Duyệt")
    reset = (
        client_for(opener)
        .post(RESETS, reset_body(citizen, kind="lost_phone", new_phone="0987111222"))
        .json()
    )
    response = inline_jobs(lambda: client_for(approver).post(f"{RESETS}/{reset['id']}/approve"))
    assert response.status_code == 200, response
    body = response.json()
    assert body["status"] == "applied"
    assert body["approved_by"] == {"id": str(approver.id), "full_name": "Đỗ Văn Duyệt"}
    assert_reset(citizen)
    assert citizen.phone == "+84987111222"
    # Verified by the reset's proofing: the password reset flow serves the new number.
    assert citizen.phone_verified_at is not None
    assert citizen.verification_level == User.Level.IDENTITY
    assert citizen_api.get("/api/v1/organisations").status_code == 401
    assert actions_on(citizen) == ["reset_opened", "reset_approved", "reset_applied"]
    applied = SupportAuditRecord.objects.get(action="reset_applied")
    assert (applied.actor_id, applied.approver_id) == (approver.id, approver.id)
    assert SupportAuditRecord.objects.get(action="reset_opened").actor_id == opener.id
    sms = read_outbox()
    assert [m["to"] for m in sms] == ["+84912345678", "+84987111222"]
    assert {m["purpose"] for m in sms} == {"notice.support_reset"}
    assert "1222" in sms[0]["text"]


def test_a_second_staff_member_may_reject_and_nothing_changes(inline_jobs: Any) -> None:
    citizen = make_citizen(level=User.Level.IDENTITY)
    sign_in(citizen)
    reset = client_for(make_staff()).post(RESETS, reset_body(citizen)).json()
    checker = client_for(make_staff())
    no_note = checker.post(f"{RESETS}/{reset['id']}/reject", {"note": " "})
    assert no_note.status_code == 422
    response = inline_jobs(
        lambda: checker.post(f"{RESETS}/{reset['id']}/reject", {"note": "Ảnh CCCD không khớp"})
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["decision_note"]) == (
        "rejected",
        "Ảnh CCCD không khớp",
    )
    assert_untouched(citizen, phone=citizen.phone)
    assert read_outbox() == []
    assert actions_on(citizen) == ["reset_opened", "reset_rejected"]
    again = checker.post(f"{RESETS}/{reset['id']}/approve")
    assert again.status_code == 409
    assert again.json()["code"] == "reset_not_pending"


def test_one_pending_reset_per_account() -> None:
    citizen = make_citizen(level=User.Level.IDENTITY)
    client = client_for(make_staff())
    assert client.post(RESETS, reset_body(citizen)).status_code == 201
    second = client_for(make_staff()).post(RESETS, reset_body(citizen))
    assert second.status_code == 409
    assert second.json()["code"] == "reset_pending"
    assert SupportReset.objects.count() == 1


def open_pending(citizen: User, opened_at: dt.datetime) -> SupportReset:
    reset_id = client_for(make_staff()).post(RESETS, reset_body(citizen)).json()["id"]
    SupportReset.objects.filter(pk=reset_id).update(opened_at=opened_at)
    return SupportReset.objects.get(pk=reset_id)


def test_a_pending_reset_is_approvable_until_the_approval_window_ends(settings: Any) -> None:
    settings.SUPPORT_RESET_APPROVAL_TTL_HOURS = 72
    citizen = make_citizen(level=User.Level.IDENTITY)
    reset = open_pending(citizen, timezone.now() - dt.timedelta(hours=72) + dt.timedelta(minutes=1))
    response = client_for(make_staff()).post(f"{RESETS}/{reset.id}/approve")
    assert response.status_code == 200
    assert response.json()["status"] == "applied"


def test_a_pending_reset_lapses_at_the_end_of_the_approval_window(settings: Any) -> None:
    settings.SUPPORT_RESET_APPROVAL_TTL_HOURS = 72
    citizen = make_citizen(level=User.Level.IDENTITY)
    sign_in(citizen)
    reset = open_pending(citizen, timezone.now() - dt.timedelta(hours=72))
    response = client_for(make_staff()).post(f"{RESETS}/{reset.id}/approve")
    assert response.status_code == 409
    assert response.json()["code"] == "reset_expired"
    assert_untouched(citizen, phone=citizen.phone)
    reopened = client_for(make_staff()).post(RESETS, reset_body(citizen))
    assert reopened.status_code == 201
    reset.refresh_from_db()
    assert reset.status == "expired"


# --- No secrets, ever ----------------------------------------------------------------------


def test_no_support_response_contains_a_secret_code_or_password(inline_jobs: Any) -> None:
    citizen = make_citizen(level=User.Level.IDENTITY, citizen_id="001190012345")
    _, tokens = sign_in(citizen)
    password_hash = citizen.password
    opener, approver = client_for(make_staff()), client_for(make_staff())
    bodies = [
        opener.post(LOOKUP, {"phone": citizen.phone}),
        opened := opener.post(RESETS, reset_body(citizen, new_phone="0987111222")),
        opener.get(f"{RESETS}/{opened.json()['id']}"),
        opener.get(RESETS, query={"status": "pending"}),
        inline_jobs(lambda: approver.post(f"{RESETS}/{opened.json()['id']}/approve")),
        opener.get("/api/v1/support/audit", query={"user_id": str(citizen.id)}),
    ]
    forbidden_values = [
        TOTP_CIPHERTEXT,
        RECOVERY_HASH,
        password_hash,
        tokens.access_token,
        tokens.refresh_token,
        "001190012345",
    ]
    forbidden_keys = {
        "password",
        "secret",
        "totp_secret",
        "code",
        "code_hash",
        "recovery_codes",
        "otp",
        "token",
        "access_token",
        "refresh_token",
    }
    for response in bodies:
        assert response.status_code in (200, 201), response
        text = response.content.decode()
        for value in forbidden_values:
            assert value not in text
        assert set(_keys(response.json())) & forbidden_keys == set()
    for message in read_outbox():
        assert TOTP_CIPHERTEXT not in message["text"]


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value.keys(), *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


# --- The citizen's view ---------------------------------------------------------------------


def test_citizens_list_the_support_actions_on_their_own_account() -> None:
    citizen = make_citizen(level=User.Level.IDENTITY)
    bystander = make_citizen()
    opener = client_for(make_staff())
    opener.post(LOOKUP, {"phone": citizen.phone})
    opener.post(LOOKUP, {"phone": bystander.phone})
    reset = opener.post(RESETS, reset_body(citizen)).json()
    client_for(make_staff()).post(f"{RESETS}/{reset['id']}/approve")
    response = client_for(make_user(phone=None)).get("/api/v1/support/my-audit")
    assert response.json()["items"] == []
    # The citizen signs in again after the reset (sessions were revoked).
    mine = ApiClient(token=sign_in(citizen)[1].access_token).get("/api/v1/support/my-audit")
    assert mine.status_code == 200
    items = mine.json()["items"]
    assert [i["action"] for i in items] == [
        "reset_applied",
        "reset_approved",
        "reset_opened",
        "lookup",
    ]
    assert [i["reset_kind"] for i in items] == [
        "lost_authenticator",
        "lost_authenticator",
        "lost_authenticator",
        None,
    ]
    assert set(items[0]) == {"id", "action", "description", "reset_kind", "created_at"}


def test_my_audit_needs_a_signed_in_user(api: ApiClient) -> None:
    assert api.get("/api/v1/support/my-audit").status_code == 401


def queued_notices() -> list[dict[str, Any]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT args FROM procrastinate_jobs WHERE task_name = 'accounts.send_sms_notice' "
            "ORDER BY id"
        )
        return [
            json.loads(row[0]) if isinstance(row[0], str) else row[0] for row in cursor.fetchall()
        ]


def test_notices_are_queued_with_the_reset_and_sent_by_the_worker_job() -> None:
    from auth.tasks import send_sms_notice

    citizen = make_citizen(phone="+84912345678")
    client_for(make_staff()).post(
        RESETS, reset_body(citizen, kind="new_phone_number", new_phone="0987111222")
    )
    jobs = queued_notices()
    assert [(j["to"], j["purpose"]) for j in jobs] == [
        ("+84912345678", "notice.support_reset"),
        ("+84987111222", "notice.support_reset"),
    ]
    assert read_outbox() == []  # nothing is sent before the worker runs the job
    send_sms_notice.func(**jobs[1])
    assert [m["to"] for m in read_outbox()] == ["+84987111222"]


def test_a_refused_reset_queues_no_notice() -> None:
    staff = make_staff()
    client_for(staff).post(RESETS, reset_body(staff))
    client_for(staff).post(RESETS, reset_body(make_citizen(), evidence=""))
    assert queued_notices() == []
