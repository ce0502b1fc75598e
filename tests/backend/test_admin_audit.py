"""What staff of any kind look up or change in the payments, notifications and postal
admins leaves an audit record: who, which citizen, by what, what was done; never a
number or a code typed.

- Each row a superuser opens (with or without an authenticator) is a look-up of its
  citizen, as it is for support staff; the list alone is none.
- A superuser's search is recorded, never what was typed: a whole phone number as a
  look-up of its account, a whole dossier code as a look-up of its applicant, a part of
  either (or any other term) as a search, with whether it found rows.
- A refund recorded, a test push sent and an anomaly resolved are staff changes in the
  audit trail, written by the action in its transaction.
- Rows that only `actions.py` writes (notifications, deliveries, devices, preferences,
  saved addresses, carrier messages) are read-only in the admin for everyone, and an
  anomaly is never deleted: nothing changes there without its action.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from auth.models import SupportAuditRecord, User
from dossiers.models import AgencyOfficer
from notifications.models import Notification
from payments import actions as payment_actions
from payments.models import Payment, PaymentAnomaly
from tests.accounts.staff import make_staff
from tests.accounts.test_support_admin import admin_client
from tests.backend.test_admin_officer_scope import officer_client
from tests.backend.test_admin_roles import (
    AUDITED_AS,
    BY_DOSSIER_CODE,
    SUPPORT_SCOPED,
    change,
    changelist,
    code_parts,
    shown,
    spaced,
    support_staff,
    worlds,  # noqa: F401 # the fixture
)
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

# Beyond support's admins: a citizen's address book and the carrier's messages.
SUPERUSER_AUDITED = [
    *SUPPORT_SCOPED,
    ("postal", "savedaddress"),
    ("postal", "carriermessage"),
]
AUDITED_BY = {**AUDITED_AS, "savedaddress": "saved_address", "carriermessage": "carrier_message"}
# Written by their app's actions only: read-only in the admin, superusers included.
READ_ONLY = [
    ("notifications", "notification"),
    ("notifications", "delivery"),
    ("notifications", "device"),
    ("notifications", "preference"),
    ("postal", "savedaddress"),
    ("postal", "carriermessage"),
]


def superuser(*, totp: bool) -> tuple[User, Client]:
    if totp:
        root = make_staff(is_superuser=True, full_name="Quản Trị Có Mã")
        return root, admin_client(root)
    root = make_user(password=None, is_staff=True, is_superuser=True, full_name="Quản Trị")
    client = Client()
    client.force_login(root)
    return root, client


def records() -> list[tuple[Any, ...]]:
    return list(
        SupportAuditRecord.objects.order_by("pk").values_list(
            "actor_id", "action", "subject_id", "channel", "details"
        )
    )


# --- Opening a row -------------------------------------------------------------------------


@pytest.mark.parametrize("totp", [False, True])
def test_each_row_a_superuser_opens_is_an_audited_look_up_of_the_citizen(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
    totp: bool,
) -> None:
    _own, other = worlds
    root, client = superuser(totp=totp)
    citizen = other["citizen"]

    for app_label, model in SUPERUSER_AUDITED:
        assert client.get(changelist(app_label, model)).status_code == 200, model
    assert records() == []  # a list alone is no look-up

    for app_label, model in SUPERUSER_AUDITED:
        page = client.get(change(app_label, model, other["rows"][model].pk))
        assert page.status_code == 200, model
    assert records() == [
        (root.id, "lookup", citizen.id, "admin", {"by": AUDITED_BY[model], "found": True})
        for _app, model in SUPERUSER_AUDITED
    ]


def test_an_officer_opening_a_carrier_message_writes_no_record(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    """Officers read their own dossiers' rows (no look-up record, as everywhere)."""
    own, _other = worlds
    client = officer_client(own)
    message = own["rows"]["carriermessage"]
    assert client.get(change("postal", "carriermessage", message.pk)).status_code == 200
    assert records() == []


# --- Searching -------------------------------------------------------------------------------


@pytest.mark.parametrize(("app_label", "model"), BY_DOSSIER_CODE)
def test_a_superusers_search_is_recorded_never_what_was_typed(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
    app_label: str,
    model: str,
) -> None:
    _own, other = worlds
    root, client = superuser(totp=False)
    citizen = other["citizen"]
    code, agency, day, _number = code_parts(other)
    url = changelist(app_label, model)
    row = {str(other["rows"][model].pk)}

    assert shown(client.get(url, {"q": spaced(citizen.phone)})) == row
    assert shown(client.get(url, {"q": "0912 000 999"})) == set()  # nobody's number
    assert shown(client.get(url, {"q": code.lower()})) == row
    assert shown(client.get(url, {"q": f"{agency}-{day}"})) == row  # a part of the code
    # A part of the number: the admins with a phone search field find the row by it.
    by_fragment = shown(client.get(url, {"q": citizen.phone[-7:]}))
    assert by_fragment == (set() if model in ("payment", "deliverybooking") else row)
    assert shown(client.get(url, {"q": "không-có-gì"})) == set()

    look_up = (root.id, "lookup")
    assert records() == [
        (*look_up, citizen.id, "admin", {"by": "phone", "found": True}),
        (*look_up, None, "admin", {"by": "phone", "found": False}),
        (*look_up, citizen.id, "admin", {"by": "dossier_code", "found": True}),
        (*look_up, None, "admin", {"by": "search", "found": True}),
        (*look_up, None, "admin", {"by": "search", "found": bool(by_fragment)}),
        (*look_up, None, "admin", {"by": "search", "found": False}),
    ]
    stored = repr(list(SupportAuditRecord.objects.values()))
    for typed in (agency, code, citizen.phone[-7:], "0912000999", "+84912000999"):
        assert typed not in stored


def test_a_superusers_search_of_saved_addresses_is_recorded_never_what_was_typed(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    _own, other = worlds
    root, client = superuser(totp=False)
    url = changelist("postal", "savedaddress")
    address = other["rows"]["savedaddress"]

    assert shown(client.get(url, {"q": "Trần Thị Khác"})) == {str(address.pk)}
    assert shown(client.get(url, {"q": spaced(address.phone)})) == {str(address.pk)}
    assert shown(client.get(url, {"q": "Không Ai"})) == set()

    holder = User.objects.filter(phone=address.phone).first()
    look_up = (root.id, "lookup")
    assert records() == [
        (*look_up, None, "admin", {"by": "search", "found": True}),
        (*look_up, holder and holder.id, "admin", {"by": "phone", "found": holder is not None}),
        (*look_up, None, "admin", {"by": "search", "found": False}),
    ]
    stored = repr(list(SupportAuditRecord.objects.values()))
    assert "Khác" not in stored
    assert address.phone[-9:] not in stored


def test_a_superuser_listing_and_filtering_without_a_search_writes_nothing(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    _root, client = superuser(totp=True)
    for app_label, model in [*BY_DOSSIER_CODE, ("postal", "savedaddress")]:
        assert client.get(changelist(app_label, model), {"q": "  "}).status_code == 200
        assert client.get(changelist(app_label, model), {"o": "1"}).status_code == 200
    assert records() == []


# --- Changes -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["superuser", "officer_with_every_permission"])
def test_rows_written_by_actions_only_are_read_only_in_the_admin(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
    who: str,
) -> None:
    own, _other = worlds
    if who == "superuser":
        _root, client = superuser(totp=False)
    else:
        officer = make_user(password=None, is_staff=True, full_name="Cán bộ Đủ Quyền")
        officer.user_permissions.add(*Permission.objects.all())
        AgencyOfficer.objects.create(agency=own["agency"], user=officer)
        client = Client()
        client.force_login(officer)
    before = {
        model: type(own["rows"][model]).objects.filter(pk=own["rows"][model].pk).values().get()
        for _app, model in [*READ_ONLY, ("payments", "paymentanomaly")]
    }
    notification: Notification = own["rows"]["notification"]

    for app_label, model in READ_ONLY:
        row = own["rows"][model]
        page = client.get(change(app_label, model, row.pk))
        assert 'name="_save"' not in page.content.decode(), model
        listing = client.get(changelist(app_label, model)).content.decode()
        assert 'value="delete_selected"' not in listing, model
        assert client.get(reverse(f"admin:{app_label}_{model}_add")).status_code == 403, model
        fields = {k: v for k, v in before[model].items() if v is not None}
        edit = {
            "notification": {"title": "Sửa tay", "read_at_0": "2026-12-01", "read_at_1": "08:00"},
            "delivery": {"state": "delivered", "attempts": "9"},
            "device": {"active": ""},
            "preference": {"quiet_hours_enabled": "on"},
            "savedaddress": {"street": "Địa chỉ khác"},
            "carriermessage": {"status": "delivered"},
        }[model]
        client.post(change(app_label, model, row.pk), {**fields, **edit, "_save": "1"})
        delete = reverse(f"admin:{app_label}_{model}_delete", args=[row.pk])
        assert client.post(delete, {"post": "yes"}).status_code == 403, model
        client.post(
            changelist(app_label, model),
            {"action": "delete_selected", "_selected_action": [str(row.pk)], "post": "yes"},
        )
    anomaly = own["rows"]["paymentanomaly"]
    delete = reverse("admin:payments_paymentanomaly_delete", args=[anomaly.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403

    after = {
        model: type(own["rows"][model]).objects.filter(pk=own["rows"][model].pk).values().get()
        for model in before
    }
    assert after == before
    assert Notification.objects.filter(user=notification.user).count() == 1
    assert not SupportAuditRecord.objects.exclude(action="lookup").exists()


@pytest.mark.parametrize("who", ["superuser", "officer_with_change"])
def test_resolving_an_anomaly_is_a_staff_change_in_the_audit_trail_once(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
    who: str,
) -> None:
    own, _other = worlds
    if who == "superuser":
        staff, client = superuser(totp=False)
    else:
        client = officer_client(own, "change_paymentanomaly")
        staff = AgencyOfficer.objects.get(agency=own["agency"]).user
    anomaly: PaymentAnomaly = own["rows"]["paymentanomaly"]
    url = change("payments", "paymentanomaly", anomaly.pk)

    blank = client.post(url, {"resolution": "   "})
    assert blank.status_code == 302
    anomaly.refresh_from_db()
    assert (anomaly.resolved_at, anomaly.resolution) == (None, "")
    assert not SupportAuditRecord.objects.filter(action="staff_change").exists()

    assert client.post(url, {"resolution": "Hoàn tiền qua VNPay ngày 07/12"}).status_code == 302
    anomaly.refresh_from_db()
    resolved_at = anomaly.resolved_at
    assert resolved_at is not None
    assert anomaly.resolution == "Hoàn tiền qua VNPay ngày 07/12"
    change_record = SupportAuditRecord.objects.get(action="staff_change")
    assert (
        change_record.actor_id,
        change_record.subject_id,
        change_record.channel,
        change_record.details,
    ) == (
        staff.id,
        own["citizen"].id,
        "admin",
        {"on": "payment_anomaly", "id": str(anomaly.pk), "action": "resolved"},
    )

    # Resolved: what was done is not rewritten, and nothing more is recorded.
    page = client.get(url).content.decode()
    assert 'name="resolution"' not in page
    client.post(url, {"resolution": "Viết lại"})
    anomaly.refresh_from_db()
    assert (anomaly.resolution, anomaly.resolved_at) == (
        "Hoàn tiền qua VNPay ngày 07/12",
        resolved_at,
    )
    assert SupportAuditRecord.objects.filter(action="staff_change").count() == 1


def test_resolve_anomaly_refuses_a_resolved_one(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    from auth.actions.support import Context
    from backend.errors import Conflict

    own, _other = worlds
    anomaly = own["rows"]["paymentanomaly"]
    staff = make_user(is_staff=True, is_superuser=True)
    payment_actions.resolve_anomaly(anomaly.pk, resolution="Đã xử lý", by=staff, context=Context())
    with pytest.raises(Conflict):
        payment_actions.resolve_anomaly(
            anomaly.pk, resolution="Lần hai", by=staff, context=Context()
        )
    assert SupportAuditRecord.objects.filter(action="staff_change").count() == 1


def test_a_refund_recorded_in_the_admin_is_a_staff_change_in_the_audit_trail(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    own, _other = worlds
    payment: Payment = own["rows"]["payment"]
    root, client = superuser(totp=False)

    client.post(
        changelist("payments", "payment"),
        {"action": "record_refund", "_selected_action": [str(payment.pk)], "index": "0"},
    )

    payment.refresh_from_db()
    assert (payment.status, payment.refunded_by_id) == ("refunded", root.id)
    assert records() == [
        (
            root.id,
            "staff_change",
            own["citizen"].id,
            "admin",
            {"on": "payment", "id": str(payment.pk), "action": "refund_recorded"},
        )
    ]


def test_a_test_push_is_a_staff_change_in_the_audit_trail(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    _own, other = worlds
    staff = support_staff("change_device")
    device = other["rows"]["device"]

    admin_client(staff).post(
        changelist("notifications", "device"),
        {"action": "send_test_push_action", "_selected_action": [device.pk], "index": "0"},
    )

    sent = Notification.objects.get(type="test")
    assert records() == [
        (
            staff.id,
            "staff_change",
            other["citizen"].id,
            "admin",
            {"on": "notification", "id": str(sent.pk), "action": "test_push_sent"},
        )
    ]
