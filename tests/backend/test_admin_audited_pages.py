"""Every page of an audited admin that shows a citizen's row is the look-up its change
page is (`auth.admin_roles.AuditedAccountViews`): the delete confirmation (the rows a
deletion would take with it) and the history (the changes made to it), for superusers
and for support staff where they reach them; a deletion posted is no second look-up,
and a page Django refuses (403) none at all.

Opening a support reset (its page, its history, its decision page) is a look-up of its
citizen, and so is opening an audit record, of its subject (never of the staff who
acted): reading the trail adds one record per page a person opens, no more.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.test import Client
from django.urls import reverse

from auth.actions import support
from auth.admin_roles import AuditedAccountViews
from auth.models import CitizenIdConflict, Membership, SupportAuditRecord, SupportReset, User
from tests.accounts.staff import make_citizen, make_staff
from tests.accounts.test_support_admin import admin_client, reset_form
from tests.backend.test_admin_roles import (
    private_rows,  # noqa: F401 # the fixture
    support_staff,
    worlds,  # noqa: F401 # the fixture
)
from tests.conftest import make_user
from tests.factories import make_organisation

pytestmark = pytest.mark.django_db

CCCD = "001099012345"


def page(app_label: str, model: str, name: str, pk: Any) -> str:
    return reverse(f"admin:{app_label}_{model}_{name}", args=[pk])


def written(client: Client, url: str, data: dict[str, Any] | None = None) -> tuple[int, list]:
    """The answer's status and the audit records the request wrote (actor, action,
    subject, details)."""
    before = SupportAuditRecord.objects.count()
    response = client.get(url) if data is None else client.post(url, data)
    rows = SupportAuditRecord.objects.order_by("pk")[before:]
    return response.status_code, list(
        rows.values_list("actor_id", "action", "subject_id", "details")
    )


def done(answer: tuple[int, list]) -> tuple[int, list]:
    """`written`'s answer without the records' details: who did what to whom."""
    status, records = answer
    return status, [(actor, action, subject) for actor, action, subject, _ in records]


def open_reset(staff: User, citizen: User) -> SupportReset:
    """A reset waiting for a second approval (a level-2 account), opened in the admin."""
    admin_client(staff).post(
        reverse("admin:accounts_support_reset", args=[citizen.pk]), reset_form()
    )
    return SupportReset.objects.get(user=citizen)


@pytest.fixture
def audited_rows(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
    private_rows: dict[str, Any],  # noqa: F811
) -> dict[str, Any]:
    """A citizen's row behind every audited admin, by model name."""
    own, other = worlds
    citizen = other["citizen"]
    opener = make_user(password=None, is_staff=True, is_superuser=True, full_name="Quản Trị Mở")
    conflict = CitizenIdConflict.objects.create(
        citizen_id=CCCD,
        verified_user=citizen,
        declared_by=own["citizen"],
        source=CitizenIdConflict.Source.DECLARED,
    )
    reset = SupportReset.objects.create(
        user=citizen,
        kind=SupportReset.Kind.LOST_AUTHENTICATOR,
        reason="Mất điện thoại",
        evidence="CCCD checked in person at the counter",
        opened_by=opener,
        requires_approval=True,
    )
    support.record_look_up(opener, citizen, context=support.Context(channel="admin"), by="phone")
    return {
        **other["rows"],
        **private_rows,
        "user": citizen,
        "dossier": other["dossier"],
        "citizenidconflict": conflict,
        "supportreset": reset,
        "supportauditrecord": SupportAuditRecord.objects.get(subject=citizen),
    }


def test_every_audited_admins_delete_and_history_pages_are_the_look_up_its_page_is(
    audited_rows: dict[str, Any],
) -> None:
    """A new audited admin fails here until it has a row: its pages are then walked."""
    root = make_staff(is_superuser=True)  # in a support session: the support records open
    client = admin_client(root)
    audited = [
        model._meta
        for model, model_admin in django_admin.site._registry.items()
        if isinstance(model_admin, AuditedAccountViews)
    ]
    assert {meta.model_name for meta in audited} <= set(audited_rows)

    deletable, refused = [], []
    for meta in audited:
        pk = audited_rows[meta.model_name].pk
        label, pages = meta.label, {}
        for name in ("change", "history", "delete"):
            pages[name] = written(client, page(meta.app_label, meta.model_name, name, pk))
        status, opened = pages["change"]
        assert status == 200, label
        assert pages["history"] == (200, opened), label
        if pages["delete"][0] == 403:  # no delete permission: refused, nothing recorded
            assert pages["delete"] == (403, []), label
            refused.append(label)
        else:
            assert pages["delete"] == (200, opened), label
            deletable.append(label)
        assert audited_rows[meta.model_name].__class__.objects.filter(pk=pk).exists(), label
    # What the walk saw: rows superusers delete, and read-only ones they may not.
    assert {"accounts.User", "accounts.Membership", "accounts.Organisation"} <= set(deletable)
    assert {
        "accounts.SupportReset",
        "accounts.SupportAuditRecord",
        "accounts.NationalIdentity",
        "dossiers.Dossier",
        "notifications.Notification",
        "payments.PaymentAnomaly",
    } <= set(refused)
    # And what a page records: a look-up of the row's citizen, as its page is.
    citizen = audited_rows["user"]
    assert written(client, page("accounts", "user", "delete", citizen.pk)) == (
        200,
        [(root.id, "lookup", citizen.id, {"by": "id", "found": True})],
    )


def test_a_deletion_posted_is_no_second_look_up() -> None:
    citizen = make_user(full_name="Lê Văn Thành Viên")
    root = make_user(password=None, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    membership = make_organisation(citizen).memberships.get()
    delete = page("accounts", "membership", "delete", membership.pk)
    look_up = (root.id, "lookup", citizen.id, {"by": "membership", "found": True})

    confirmation = written(client, delete)
    # An empty post shows the confirmation page again (Django's): a page shown.
    again = written(client, delete, {})
    deletion = written(client, delete, {"post": "yes"})

    assert confirmation == (200, [look_up])
    assert again == (200, [look_up])
    assert deletion == (302, [])
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_support_staff_opening_a_history_page_is_a_look_up_and_a_delete_page_refused(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    _own, other = worlds
    citizen = other["citizen"]
    staff = support_staff("delete_payment", "delete_notification")
    client = admin_client(staff)
    rows = [
        ("accounts", "user", citizen.pk, "id"),
        ("payments", "payment", other["rows"]["payment"].pk, "payment"),
        ("notifications", "notification", other["rows"]["notification"].pk, "notification"),
    ]
    for app_label, model, pk, by in rows:
        assert written(client, page(app_label, model, "history", pk)) == (
            200,
            [(staff.id, "lookup", citizen.id, {"by": by, "found": True})],
        ), model
        # Read-only for support staff, whatever their permissions: 403, nothing written.
        assert written(client, page(app_label, model, "delete", pk)) == (403, []), model
        assert written(client, page(app_label, model, "delete", pk), {"post": "yes"}) == (
            403,
            [],
        ), model
    assert User.objects.filter(pk=citizen.pk).exists()


# --- Support resets and the audit trail --------------------------------------------------


def test_opening_a_support_reset_is_a_look_up_of_its_citizen() -> None:
    citizen = make_citizen(level=User.Level.IDENTITY, full_name="Vũ Thị Được Hỗ Trợ")
    opener, checker = make_staff(), make_staff(full_name="Ngô Văn Duyệt")
    reset = open_reset(opener, citizen)
    client = admin_client(checker)
    look_up = (checker.id, "lookup", citizen.id, {"by": "support_reset", "found": True})

    listing = written(client, reverse("admin:accounts_supportreset_changelist"))
    opened = written(client, page("accounts", "supportreset", "change", reset.pk))
    history = written(client, page("accounts", "supportreset", "history", reset.pk))
    decide = reverse("admin:accounts_supportreset_decide", args=[reset.pk])
    decision_page = written(client, decide)
    without_a_note = written(client, decide, {"reject": "1", "note": ""})  # shown again
    rejected = written(client, decide, {"reject": "1", "note": "Giấy tờ không khớp"})

    assert listing == (200, [])  # a list alone is no look-up
    assert opened == (200, [look_up])
    assert history == (200, [look_up])
    assert decision_page == (200, [look_up])
    assert without_a_note == (200, [look_up])
    # The decision posted is recorded as what it is, not as one more look-up.
    assert done(rejected) == (302, [(checker.id, "reset_rejected", citizen.id)])


def test_the_page_that_opens_a_reset_is_a_look_up_of_its_account() -> None:
    """The form shows the account (masked), as its change page does: the page and the
    page shown again after a reset refused are look-ups; a reset opened is recorded as
    what it is, a page refused or of no account is none."""
    citizen = make_citizen(level=User.Level.IDENTITY, full_name="Lý Thị Mở Hồ Sơ")
    staff = make_staff(full_name="Đào Văn Mở")
    client = admin_client(staff)
    url = reverse("admin:accounts_support_reset", args=[citizen.pk])
    look_up = (staff.id, "lookup", citizen.id, {"by": "id", "found": True})

    form = written(client, url)
    without_evidence = written(client, url, reset_form(evidence=""))
    opened = written(client, url, reset_form())
    without_totp = written(admin_client(make_staff(totp=False)), url)
    of_nobody = written(client, reverse("admin:accounts_support_reset", args=[uuid.uuid4()]))

    assert form == (200, [look_up])
    assert without_evidence == (200, [look_up])
    assert done(opened) == (302, [(staff.id, "reset_opened", citizen.id)])
    assert without_totp == (403, [])
    assert of_nobody == (404, [])
    assert set(SupportAuditRecord.objects.values_list("channel", flat=True)) == {"admin"}


def test_a_superuser_opening_a_support_reset_is_a_look_up_too() -> None:
    citizen = make_citizen(level=User.Level.IDENTITY)
    reset = open_reset(make_staff(), citizen)
    root = make_staff(is_superuser=True)

    opened = written(admin_client(root), page("accounts", "supportreset", "change", reset.pk))

    assert opened == (
        200,
        [(root.id, "lookup", citizen.id, {"by": "support_reset", "found": True})],
    )


def test_opening_an_audit_record_is_a_look_up_of_its_subject_never_of_the_staff() -> None:
    """Each record opened writes one record: the trail grows by the pages people open,
    and writing a record opens nothing, so nothing loops."""
    citizen = make_citizen(full_name="Đinh Văn Chủ Thể")
    searcher, reader = make_staff(), make_staff(full_name="Trịnh Thị Đọc")
    context = support.Context(channel="admin")
    support.record_look_up(searcher, citizen, context=context, by="phone")
    support.record_look_up(searcher, None, context=context, by="phone")  # found nobody
    of_citizen, of_nobody = SupportAuditRecord.objects.order_by("pk")
    client = admin_client(reader)
    look_up = (reader.id, "lookup", citizen.id, {"by": "audit_record", "found": True})

    listing = written(client, reverse("admin:accounts_supportauditrecord_changelist"))
    opened = written(client, page("accounts", "supportauditrecord", "change", of_citizen.pk))
    history = written(client, page("accounts", "supportauditrecord", "history", of_citizen.pk))
    nobodys = written(client, page("accounts", "supportauditrecord", "change", of_nobody.pk))
    reading_the_reading = SupportAuditRecord.objects.order_by("pk").last()
    assert reading_the_reading is not None
    read_again = written(
        client, page("accounts", "supportauditrecord", "change", reading_the_reading.pk)
    )

    assert listing == (200, [])
    assert opened == (200, [look_up])
    assert history == (200, [look_up])
    assert nobodys == (200, [])  # a record of nobody names no citizen
    assert read_again == (200, [look_up])
    assert SupportAuditRecord.objects.filter(subject=searcher).count() == 0
    assert SupportAuditRecord.objects.count() == 2 + 3
