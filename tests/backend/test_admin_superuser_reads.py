"""A superuser's reads of citizens' data in the admin leave an audit record, never what
was typed, beyond the payments, notifications and postal admins (test_admin_audit.py):

- each search on the user pages, in the superuser-only admins, the support records and
  the carrier messages: a whole phone number as a look-up of its account, anything else
  as a search with whether it found rows (`auth.admin_roles.record_superuser_search`);
- each dossier a superuser opens is a look-up of its applicant, and each search of the
  dossiers too (a whole code as a look-up of its applicant); an officer's reads of the
  dossiers they handle are not recorded, support permission or not;
- a reconciliation report shows no citizen's identity: opening one is no look-up;
- every admin with a search box records a superuser's search there and says what it
  matches, unless it lists no citizen's rows (the catalogue, groups).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import Permission
from django.test import Client

from auth.models import SupportAuditRecord, User
from dossiers.models import AgencyOfficer
from payments.models import ReconciliationReport
from tests.accounts.staff import make_citizen, make_staff
from tests.accounts.test_support_admin import admin_client
from tests.backend.test_admin_audit import records, superuser
from tests.backend.test_admin_officer_scope import officer_client
from tests.backend.test_admin_roles import (
    INVITED_PHONE,
    change,
    changelist,
    code_parts,
    private_rows,  # noqa: F401 # the fixture
    shown,
    spaced,
    worlds,  # noqa: F401 # the fixture
)

pytestmark = pytest.mark.django_db

NOTHING = "không-có-gì-zz"
CCCD = "001099012345"
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
    assert found("2345678") == {str(citizen.pk)}  # a part of the number
    assert found(NOTHING) == set()
    assert client.get(url).status_code == 200  # the list alone: no search

    look_up = (root.id, "lookup")
    assert records() == [
        (*look_up, citizen.id, "admin", {"by": "phone", "found": True}),
        (*look_up, None, "admin", {"by": "phone", "found": False}),
        (*look_up, None, "admin", {"by": "search", "found": True}),
        (*look_up, None, "admin", {"by": "search", "found": True}),
        (*look_up, None, "admin", {"by": "search", "found": True}),
        (*look_up, None, "admin", {"by": "search", "found": False}),
    ]
    for typed in ("912345678", "912000999", "Tra Cứu", CCCD, "2345678", NOTHING):
        assert typed not in stored()


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
