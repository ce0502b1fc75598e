"""A superuser's reads of citizens' data in the admin leave an audit record, never what
was typed, beyond the payments, notifications and postal admins (test_admin_audit.py):

- each search on the user pages, in the superuser-only admins, the support records and
  the carrier messages: a whole phone number as a look-up of its account, so too a whole
  citizen ID number where the admin matches citizen IDs (the user pages), anything else
  as a search with whether it found rows (`auth.admin_roles.record_superuser_search`);
- each row a superuser opens in a superuser-only admin is a look-up of the accounts its
  page shows (a membership's, session's or national identity's account, an invitation's
  inviter, responder and invited number's account, an organisation's members); a page
  that shows no citizen (an organisation without members, a reconciliation report) is
  none, and nobody else opens those rows;
- each dossier a superuser opens is a look-up of its applicant, and each search of the
  dossiers too (a whole code as a look-up of its applicant); an officer's reads of the
  dossiers they handle are not recorded, support permission or not;
- a reconciliation report shows no citizen's identity: opening one is no look-up;
- every admin with a search box records a superuser's search there and says what it
  matches, unless it lists no citizen's rows (the catalogue, groups).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from auth.models import Invitation, Membership, SupportAuditRecord, User
from dossiers.models import AgencyOfficer
from payments.models import ReconciliationReport
from tests.accounts.staff import make_citizen, make_staff
from tests.accounts.test_support_admin import admin_client
from tests.backend.test_admin_audit import records, superuser
from tests.backend.test_admin_officer_scope import officer_client
from tests.backend.test_admin_roles import (
    INVITED_PHONE,
    SUPERUSER_ONLY,
    change,
    changelist,
    code_parts,
    private_rows,  # noqa: F401 # the fixture
    shown,
    spaced,
    worlds,  # noqa: F401 # the fixture
)
from tests.conftest import make_user
from tests.factories import make_organisation

pytestmark = pytest.mark.django_db

NOTHING = "không-có-gì-zz"
CCCD = "001099012345"
NOBODYS_CCCD = "079200000001"
# Admins with a search box that list no citizen's rows: their searches are not recorded.
NO_CITIZENS_ROWS = {"auth.Group", "dossiers.Agency", "dossiers.Procedure", "dossiers.DocumentType"}


def stored() -> str:
    return repr(list(SupportAuditRecord.objects.values()))


# --- The user pages ------------------------------------------------------------------------


@pytest.mark.parametrize("totp", [False, True])
def test_a_superusers_search_of_the_user_pages_is_recorded_never_what_was_typed(
    totp: bool,
) -> None:
    citizen = make_citizen(phone="+84912345678", full_name="Đỗ Văn Tra Cứu")
    User.objects.filter(pk=citizen.pk).update(citizen_id=CCCD)
    root, client = superuser(totp=totp)
    url = changelist("accounts", "user")

    def found(typed: str) -> set[str]:
        return shown(client.get(url, {"q": typed})) - {str(root.pk)}

    assert found("0912 345 678") == {str(citizen.pk)}
    assert found("0912 000 999") == set()  # nobody's number
    assert found("Tra Cứu") == {str(citizen.pk)}
    assert found(CCCD) == {str(citizen.pk)}
    assert found(f" {NOBODYS_CCCD} ") == set()  # a whole number nobody holds
    assert found(CCCD[3:]) == {str(citizen.pk)}  # a part of a citizen ID
    assert found("2345678") == {str(citizen.pk)}  # a part of the number
    assert found(NOTHING) == set()
    assert client.get(url).status_code == 200  # the list alone: no search

    look_up = (root.id, "lookup")
    assert records() == [
        (*look_up, citizen.id, "admin", {"by": "phone", "found": True}),
        (*look_up, None, "admin", {"by": "phone", "found": False}),
        (*look_up, None, "admin", {"by": "search", "found": True}),
        (*look_up, citizen.id, "admin", {"by": "citizen_id", "found": True}),
        (*look_up, None, "admin", {"by": "citizen_id", "found": False}),
        (*look_up, None, "admin", {"by": "search", "found": True}),
        (*look_up, None, "admin", {"by": "search", "found": True}),
        (*look_up, None, "admin", {"by": "search", "found": False}),
    ]
    for typed in ("912345678", "912000999", "Tra Cứu", CCCD, NOBODYS_CCCD, CCCD[3:], "2345678"):
        assert typed not in stored()
    assert NOTHING not in stored()


def test_a_whole_citizen_id_is_a_plain_search_where_an_admin_matches_no_citizen_id(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    """Only an admin that finds rows by citizen ID (the user pages) looks up the account
    of a whole number: elsewhere the number finds no row, and the record names nobody."""
    _own, other = worlds
    User.objects.filter(pk=other["citizen"].pk).update(citizen_id=CCCD)
    root, client = superuser(totp=True)
    searched = [
        ("accounts", "membership"),  # a superuser-only admin
        ("accounts", "supportauditrecord"),  # a support record
        ("payments", "payment"),  # an admin of a dossier's rows
        ("dossiers", "dossier"),
    ]
    for app_label, model in searched:
        assert shown(client.get(changelist(app_label, model), {"q": CCCD})) == set(), model

    assert records() == [
        (root.id, "lookup", None, "admin", {"by": "search", "found": False}) for _ in searched
    ]
    assert CCCD not in stored()


def test_support_staffs_search_by_a_whole_citizen_id_on_the_user_pages_writes_nothing() -> None:
    """Support staff's rule is unchanged: a citizen ID only the support look-up finds."""
    citizen = make_citizen()
    User.objects.filter(pk=citizen.pk).update(citizen_id=CCCD)
    listing = admin_client(make_staff()).get(changelist("accounts", "user"), {"q": CCCD})
    assert shown(listing) == set()
    assert records() == []


def test_support_staffs_search_by_name_on_the_user_pages_writes_nothing_new() -> None:
    """The superusers' record is theirs: support staff's searches keep their own rule
    (a whole number is a look-up; a name is no record)."""
    citizen = make_citizen(full_name="Đỗ Văn Tra Cứu")
    listing = admin_client(make_staff()).get(changelist("accounts", "user"), {"q": "Tra Cứu"})
    assert shown(listing) == {str(citizen.pk)}
    assert records() == []


# --- The superuser-only admins --------------------------------------------------------------


@pytest.mark.parametrize(
    "model", ["organisation", "membership", "invitation", "devicesession", "nationalidentity"]
)
def test_a_superusers_search_of_a_superuser_only_admin_is_recorded_never_what_was_typed(
    private_rows: dict[str, Any],  # noqa: F811
    model: str,
) -> None:
    row = private_rows[model]
    citizen = private_rows["membership"].user
    root, client = superuser(totp=False)
    url = changelist("accounts", model)
    # What finds the row there, and the record it makes (the holder of a whole number).
    typed, subject, by = {
        "organisation": (private_rows["organisation"].tax_code[-6:], None, "search"),
        "membership": (spaced(citizen.phone), citizen.id, "phone"),
        "invitation": (spaced(INVITED_PHONE), None, "phone"),  # no account holds it
        "devicesession": (citizen.phone[-7:], None, "search"),
        "nationalidentity": ("Văn Riêng", None, "search"),
    }[model]

    assert shown(client.get(url, {"q": typed})) == {str(row.pk)}
    assert shown(client.get(url, {"q": NOTHING})) == set()
    assert client.get(url, {"o": "1"}).status_code == 200  # no search: no record

    look_up = (root.id, "lookup")
    assert records() == [
        (*look_up, subject, "admin", {"by": by, "found": subject is not None or by == "search"}),
        (*look_up, None, "admin", {"by": "search", "found": False}),
    ]
    for text in (typed, typed.replace(" ", ""), NOTHING, INVITED_PHONE[3:]):
        assert text not in stored()


OPENED_AS = {
    "organisation": "organisation",
    "membership": "membership",
    "invitation": "invitation",
    "devicesession": "device_session",
    "nationalidentity": "national_identity",
}


@pytest.mark.parametrize("totp", [False, True])
def test_each_row_a_superuser_opens_in_a_superuser_only_admin_is_a_look_up_of_its_citizen(
    private_rows: dict[str, Any],  # noqa: F811
    totp: bool,
) -> None:
    """The citizen of each: a membership's member, a session's and a national identity's
    account, an invitation's inviter, an organisation's member (its owner here)."""
    citizen = private_rows["membership"].user
    root, client = superuser(totp=totp)

    for model in OPENED_AS:
        assert client.get(changelist("accounts", model)).status_code == 200, model
    assert records() == []  # a list alone is no look-up

    for model in OPENED_AS:
        page = client.get(change("accounts", model, private_rows[model].pk))
        assert page.status_code == 200, model
        assert citizen.full_name in page.content.decode(), model  # what makes it a look-up
    assert records() == [
        (root.id, "lookup", citizen.id, "admin", {"by": by, "found": True})
        for by in OPENED_AS.values()
    ]
    assert INVITED_PHONE[3:] not in stored()


def test_opening_an_organisation_is_a_look_up_of_each_member_it_shows() -> None:
    owner = make_user(full_name="Chủ Doanh Nghiệp")
    member = make_user(full_name="Nhân Viên Một")
    organisation = make_organisation(owner)
    Membership.objects.create(organisation=organisation, user=member)
    empty = make_organisation()  # no member: its page shows no citizen
    root, client = superuser(totp=False)

    page = client.get(change("accounts", "organisation", organisation.pk))
    assert client.get(change("accounts", "organisation", empty.pk)).status_code == 200

    assert page.status_code == 200
    for name in (owner.full_name, member.full_name):
        assert name in page.content.decode()  # the members' inline: what makes it a look-up
    assert records() == [
        (root.id, "lookup", owner.id, "admin", {"by": "organisation", "found": True}),
        (root.id, "lookup", member.id, "admin", {"by": "organisation", "found": True}),
    ]


def test_opening_an_invitation_looks_up_its_inviter_and_the_invited_numbers_account() -> None:
    inviter = make_user(full_name="Người Mời")
    invitee = make_user(full_name="Người Được Mời")
    organisation = make_organisation(inviter)
    expires = timezone.now() + dt.timedelta(days=7)
    answered = Invitation.objects.create(
        organisation=organisation,
        phone=invitee.phone,
        invited_by=inviter,
        status=Invitation.Status.ACCEPTED,
        responded_by=invitee,
        responded_at=timezone.now(),
        expires_at=expires,
    )
    pending = Invitation.objects.create(
        organisation=organisation, phone=invitee.phone, invited_by=None, expires_at=expires
    )
    # Nobody's: its inviter gone (SET_NULL), its number no account's.
    nobodys = Invitation.objects.create(
        organisation=organisation, phone=INVITED_PHONE, invited_by=None, expires_at=expires
    )
    root, client = superuser(totp=True)

    for invitation in (answered, pending, nobodys):
        page = client.get(change("accounts", "invitation", invitation.pk))
        assert page.status_code == 200

    look_up = (root.id, "lookup")
    by = {"by": "invitation", "found": True}
    assert records() == [
        # The answered one: its inviter, and its responder, who holds the number (once).
        (*look_up, inviter.id, "admin", by),
        (*look_up, invitee.id, "admin", by),
        # The pending one: the account of the number it went to.
        (*look_up, invitee.id, "admin", by),
        # Nobody's: nothing.
    ]
    assert invitee.phone[3:] not in stored()


def test_a_post_django_refuses_on_a_superuser_only_admin_is_no_look_up(
    private_rows: dict[str, Any],  # noqa: F811
) -> None:
    """Device sessions are never edited: a superuser's post shows nothing (403)."""
    _root, client = superuser(totp=False)
    session = private_rows["devicesession"]
    response = client.post(change("accounts", "devicesession", session.pk), {"_save": "1"})
    assert response.status_code == 403
    assert records() == []


@pytest.mark.parametrize("who", ["support_staff", "officer_with_every_permission"])
def test_nobody_but_superusers_opening_a_superuser_only_row_writes_anything(
    private_rows: dict[str, Any],  # noqa: F811
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
    who: str,
) -> None:
    if who == "support_staff":
        staff = make_staff()  # in a support session
        client = admin_client(staff)
    else:
        staff = make_user(password=None, is_staff=True, full_name="Cán bộ Đủ Quyền")
        AgencyOfficer.objects.create(agency=worlds[0]["agency"], user=staff)
        client = Client()
        client.force_login(staff)
    staff.user_permissions.add(*Permission.objects.all())

    for app_label, model in SUPERUSER_ONLY:
        url = change(app_label, model, private_rows[model].pk)
        assert client.get(url).status_code == 403, model
        assert client.post(url, {"_save": "1"}).status_code == 403, model
    assert records() == []


def test_a_term_where_an_admin_has_no_search_field_is_no_search(
    private_rows: dict[str, Any],  # noqa: F811
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    """Django ignores `?q=` without search fields: all rows, and nothing recorded."""
    _root, client = superuser(totp=True)
    for app_label, model in [
        ("payments", "reconciliationreport"),
        ("payments", "paymentrequest"),
        ("notifications", "preference"),
        ("accounts", "citizenidconflict"),
    ]:
        assert client.get(changelist(app_label, model), {"q": NOTHING}).status_code == 200
    assert records() == []


# --- Dossiers ------------------------------------------------------------------------------


@pytest.mark.parametrize("totp", [False, True])
def test_each_dossier_a_superuser_opens_is_an_audited_look_up_of_its_applicant(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
    totp: bool,
) -> None:
    _own, other = worlds
    root, client = superuser(totp=totp)
    dossier, citizen = other["dossier"], other["citizen"]

    assert client.get(changelist("dossiers", "dossier")).status_code == 200
    assert records() == []  # a list alone is no look-up
    page = client.get(change("dossiers", "dossier", dossier.pk))

    assert page.status_code == 200
    assert citizen.full_name in page.content.decode()  # what makes it a look-up
    assert records() == [(root.id, "lookup", citizen.id, "admin", {"by": "dossier", "found": True})]


def test_a_superusers_search_of_dossiers_is_recorded_never_what_was_typed(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    _own, other = worlds
    root, client = superuser(totp=False)
    code, agency, day, _number = code_parts(other)
    url = changelist("dossiers", "dossier")
    row = {str(other["dossier"].pk)}

    assert shown(client.get(url, {"q": code.lower()})) == row
    assert shown(client.get(url, {"q": f"{agency}-{day}"})) == row  # a part of the code
    assert shown(client.get(url, {"q": NOTHING})) == set()
    assert shown(client.get(url, {"q": "X-261207-9999"})) == set()  # nobody's code

    look_up = (root.id, "lookup")
    assert records() == [
        (*look_up, other["citizen"].id, "admin", {"by": "dossier_code", "found": True}),
        (*look_up, None, "admin", {"by": "search", "found": True}),
        (*look_up, None, "admin", {"by": "search", "found": False}),
        (*look_up, None, "admin", {"by": "dossier_code", "found": False}),
    ]
    for typed in (agency, code, NOTHING, "261207-9999"):
        assert typed not in stored()


@pytest.mark.parametrize("who", ["officer", "officer_with_support_session"])
def test_an_officers_reads_of_the_dossiers_they_handle_write_nothing(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
    who: str,
) -> None:
    """The pending steering decision: an officer's own dossiers are not audited, even
    for an officer who also holds the support permission, in a support session (an
    officer stays an officer, as in the admins of dossier rows)."""
    own, _other = worlds
    if who == "officer":
        client = officer_client(own)
    else:
        staff = make_staff(full_name="Cán bộ Kiêm Hỗ Trợ")
        staff.user_permissions.add(Permission.objects.get(codename="view_dossier"))
        AgencyOfficer.objects.create(agency=own["agency"], user=staff)
        client = admin_client(staff)
    dossier = own["dossier"]
    code, agency, _day, _number = code_parts(own)
    url = changelist("dossiers", "dossier")

    assert shown(client.get(url, {"q": code})) == {str(dossier.pk)}
    assert shown(client.get(url, {"q": agency})) == {str(dossier.pk)}
    page = client.get(change("dossiers", "dossier", dossier.pk))

    assert page.status_code == 200
    assert own["citizen"].full_name in page.content.decode()
    assert records() == []


# --- Reconciliation reports -------------------------------------------------------------------


def test_opening_a_reconciliation_report_is_no_look_up_it_names_no_citizen(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    """A report lists the day's payments by id, order reference, gateway, status and
    amount (`payments.reconciliation`): no name, phone or ID of whoever paid, so no
    citizen is looked up by reading it."""
    _own, other = worlds
    payment, citizen = other["rows"]["payment"], other["citizen"]
    report = ReconciliationReport.objects.create(
        day=payment.created_at.date(),
        checked=1,
        mismatches=[
            {
                "payment_id": str(payment.pk),
                "order_ref": payment.order_ref,
                "gateway": payment.gateway,
                "our_status": payment.status,
                "our_amount": payment.amount,
                "problem": "status",
                "gateway_status": "failed",
                "gateway_amount": payment.amount,
                "gateway_reference": "VNP0001",
            }
        ],
    )
    _root, client = superuser(totp=True)

    page = client.get(change("payments", "reconciliationreport", report.pk))

    assert page.status_code == 200
    html = page.content.decode()
    assert payment.order_ref in html
    for identity in (citizen.full_name, citizen.phone, citizen.phone[3:]):
        assert identity not in html
    assert records() == []


# --- Every admin -----------------------------------------------------------------------------


def test_every_admin_of_citizens_rows_records_a_superusers_search_and_says_what_it_matches(
    worlds: tuple[dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    """A new admin with a search box fails here until it records superusers' searches
    (or lists no citizen's rows) and has its own help text."""
    root = make_staff(is_superuser=True)  # in a support session: the support records open
    client: Client = admin_client(root)
    searched = []
    for model, model_admin in django_admin.site._registry.items():
        if not model_admin.search_fields:
            continue
        label = model._meta.label
        meta = model._meta
        before = SupportAuditRecord.objects.count()
        response = client.get(changelist(meta.app_label, meta.model_name), {"q": NOTHING})
        assert response.status_code == 200, label
        written = list(
            SupportAuditRecord.objects.order_by("pk")[before:].values_list(
                "actor_id", "subject_id", "details"
            )
        )
        if label in NO_CITIZENS_ROWS:
            assert written == [], label
            continue
        searched.append(label)
        assert written == [(root.id, None, {"by": "search", "found": False})], label
        assert model_admin.search_help_text, label
    assert {
        "accounts.User",
        "accounts.Organisation",
        "accounts.Membership",
        "accounts.Invitation",
        "accounts.DeviceSession",
        "accounts.NationalIdentity",
        "accounts.SupportReset",
        "accounts.SupportAuditRecord",
        "dossiers.Dossier",
        "postal.SavedAddress",
        "postal.CarrierMessage",
        "postal.DeliveryBooking",
        "payments.Payment",
        "payments.PaymentAnomaly",
        "notifications.Device",
        "notifications.Notification",
        "notifications.Delivery",
    } <= set(searched)
