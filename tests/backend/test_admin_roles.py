"""Who sees what in the admins beyond the user pages and the officers' scope.

- Admins that serve no support or officer duty and hold personal data (organisations,
  memberships, invitations with their phone numbers, device sessions with their IP
  addresses, national identities with their subject ids, the reconciliation reports of
  every agency's payments) are for superusers only, whatever other staff's permissions.
- Support staff who handle no agency, in a support session, see every payment,
  notification and postal booking row (to answer "I paid but the app says unpaid", "I
  get no notifications" and "where is my parcel") on the support permission alone,
  read-only; each row they open is an audited look-up of the citizen, and they find a
  citizen's rows by the whole phone number only. Outside a support session they see
  nothing, and an officer stays an officer.
- Support staff see a booking's recipient masked and no street; officers shipping it
  and superusers see it whole.
- Staff other than superusers find a dossier's payments, notifications (and their
  deliveries) and postal bookings only with its whole code: for support staff an audited
  look-up of the applicant, for officers within their rows; a booking's order number,
  which carries the code, only whole too.
- Only superusers see a payer's IP address (in a checkout URL).
- The list pages cost as many queries with many rows as with one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from auth.admin_login import SECOND_FACTOR_SESSION_KEY, second_factor_mark
from auth.models import Invitation, NationalIdentity, SupportAuditRecord, User
from dossiers.admin_scope import OfficerOrSupportAdmin
from dossiers.models import AgencyOfficer
from notifications.models import Delivery, Notification
from payments.models import Payment, ReconciliationReport
from tests.accounts.staff import make_staff, support_group
from tests.accounts.test_support_admin import admin_client
from tests.backend.test_admin_officer_scope import SCOPED, agency_world, officer_client
from tests.conftest import make_user, sign_in
from tests.factories import make_organisation

pytestmark = pytest.mark.django_db

SUPERUSER_ONLY = [
    ("accounts", "organisation"),
    ("accounts", "membership"),
    ("accounts", "invitation"),
    ("accounts", "devicesession"),
    ("accounts", "nationalidentity"),
    ("payments", "reconciliationreport"),
]
SUPPORT_SCOPED = [
    (app, model)
    for app, model in SCOPED
    if app in ("payments", "notifications") or model == "deliverybooking"
]
AUDITED_AS = {
    "deliverybooking": "delivery_booking",
    "paymentrequest": "payment_request",
    "payment": "payment",
    "paymentanomaly": "payment_anomaly",
    "notification": "notification",
    "delivery": "delivery",
    "device": "device",
    "preference": "preference",
}
INVITED_PHONE = "+84986555444"
SESSION_IP = "198.51.100.23"
NATIONAL_SUBJECT = "vneid-subject-0123456789"
PAYER_IP = "203.0.113.7"
CHECKOUT_URL = (
    "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html?vnp_Amount=5000000"
    f"&vnp_IpAddr={PAYER_IP}&vnp_SecureHash=abc123"
)


def changelist(app_label: str, model: str) -> str:
    return reverse(f"admin:{app_label}_{model}_changelist")


def change(app_label: str, model: str, pk: Any) -> str:
    return reverse(f"admin:{app_label}_{model}_change", args=[pk])


def shown(response: Any) -> set[str]:
    return {str(row.pk) for row in response.context["cl"].result_list}


def root_client() -> Client:
    client = Client()
    client.force_login(make_user(password=None, is_staff=True, is_superuser=True))
    return client


def support_staff(*codenames: str, **extra: Any) -> User:
    """Support staff who handle no agency, with "view" on the payments and notifications
    admins (and `codenames`)."""
    staff = make_staff(**extra)
    staff.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[f"view_{model}" for _, model in SUPPORT_SCOPED] + list(codenames)
        )
    )
    return staff


@pytest.fixture
def worlds() -> tuple[dict[str, Any], dict[str, Any]]:
    own = agency_world("Nguyễn Văn Mình", "+84987111000", "Ngõ 1 nhà 1", "OWNAGENCY1")
    other = agency_world("Trần Thị Khác", "+84987222333", "Ngõ 9 nhà 3", "OTHERAGENCY")
    return own, other


@pytest.fixture
def private_rows() -> dict[str, Any]:
    """A row behind each superuser-only admin, each holding something personal."""
    citizen = make_user(full_name="Hoàng Văn Riêng")
    session, _ = sign_in(citizen, ip=SESSION_IP)
    organisation = make_organisation(citizen)
    invitation = Invitation.objects.create(
        organisation=organisation,
        phone=INVITED_PHONE,
        invited_by=citizen,
        expires_at=timezone.now() + dt.timedelta(days=7),
    )
    identity = NationalIdentity.objects.create(
        user=citizen, issuer="https://sso.dichvucong.gov.vn", subject=NATIONAL_SUBJECT, level=2
    )
    report = ReconciliationReport.objects.create(
        day=timezone.localdate(), checked=1, mismatches=[{"order_ref": "PRIVATE1"}]
    )
    return {
        "organisation": organisation,
        "membership": organisation.memberships.get(),
        "invitation": invitation,
        "devicesession": session,
        "nationalidentity": identity,
        "reconciliationreport": report,
    }


# --- Superusers only ---------------------------------------------------------------------


@pytest.mark.parametrize("who", ["support_staff", "officer_with_every_permission"])
def test_admins_without_a_staff_duty_are_for_superusers_only(
    private_rows: dict[str, Any], worlds: tuple[dict[str, Any], dict[str, Any]], who: str
) -> None:
    if who == "support_staff":
        staff = make_staff()
        client = admin_client(staff)
    else:
        staff = make_user(password=None, is_staff=True, full_name="Cán bộ Đủ Quyền")
        AgencyOfficer.objects.create(agency=worlds[0]["agency"], user=staff)
        client = Client()
        client.force_login(staff)
    staff.user_permissions.add(*Permission.objects.all())
    index = client.get(reverse("admin:index")).content.decode()
    for app_label, model in SUPERUSER_ONLY:
        row = private_rows[model]
        assert changelist(app_label, model) not in index, model
        for url in (changelist(app_label, model), change(app_label, model, row.pk)):
            response = client.get(url)
            assert response.status_code == 403, url
            html = response.content.decode()
            for secret in (INVITED_PHONE, SESSION_IP, NATIONAL_SUBJECT, "PRIVATE1"):
                assert secret not in html, url
        client.post(change(app_label, model, row.pk), {"_save": "1"})
        assert type(row).objects.filter(pk=row.pk).exists(), model
    # Revoking sessions is refused too, though the permission is there.
    client.post(
        changelist("accounts", "devicesession"),
        {"action": "revoke_sessions", "_selected_action": [str(private_rows["devicesession"].pk)]},
    )
    private_rows["devicesession"].refresh_from_db()
    assert private_rows["devicesession"].revoked_at is None


def test_superusers_still_use_the_superuser_only_admins(private_rows: dict[str, Any]) -> None:
    client = root_client()
    for app_label, model in SUPERUSER_ONLY:
        row = private_rows[model]
        assert str(row.pk) in shown(client.get(changelist(app_label, model))), model
        assert client.get(change(app_label, model, row.pk)).status_code == 200, model
    page = client.get(change("accounts", "invitation", private_rows["invitation"].pk))
    assert INVITED_PHONE in page.content.decode()


def spaced(phone: str) -> str:
    """+84987222333 as people write it: 0987 222 333."""
    return f"0{phone[3:6]} {phone[6:9]} {phone[9:]}"


def test_superusers_find_rows_by_a_phone_number_written_as_people_write_it(
    worlds: tuple[dict[str, Any], dict[str, Any]], private_rows: dict[str, Any]
) -> None:
    """The stored form is +84…: "0987 222 333" is that number, found whole (and a
    part of a stored number still finds it, for superusers only)."""
    _own, other = worlds
    citizen = other["citizen"]
    client = root_client()

    for app_label, model in [
        ("notifications", "notification"),
        ("notifications", "delivery"),
        ("notifications", "device"),
        ("payments", "payment"),
        ("postal", "deliverybooking"),
    ]:
        for typed in (spaced(citizen.phone), f"0{citizen.phone[3:]}"):
            found = client.get(changelist(app_label, model), {"q": typed})
            assert shown(found) == {str(other["rows"][model].pk)}, (model, typed)
    for typed in (spaced(citizen.phone), citizen.phone[-7:]):
        found = client.get(changelist("accounts", "user"), {"q": typed})
        assert citizen.pk in {row.pk for row in found.context["cl"].result_list}, typed
    invitation = private_rows["invitation"]
    found = client.get(changelist("accounts", "invitation"), {"q": spaced(INVITED_PHONE)})
    assert shown(found) == {str(invitation.pk)}
    member = private_rows["membership"]
    found = client.get(changelist("accounts", "membership"), {"q": spaced(member.user.phone)})
    assert shown(found) == {str(member.pk)}
    # Each search by the whole number is an audited look-up of its account (none holds
    # the invited number), and a part of one a search (tests/backend/test_admin_audit.py,
    # tests/backend/test_admin_superuser_reads.py).
    assert list(SupportAuditRecord.objects.order_by("pk").values_list("subject_id", "details")) == [
        *[(citizen.id, {"by": "phone", "found": True})] * 11,
        (None, {"by": "search", "found": True}),
        (None, {"by": "phone", "found": False}),
        (member.user.id, {"by": "phone", "found": True}),
    ]


@pytest.mark.parametrize(
    ("app_label", "model"),
    [
        ("notifications", "notification"),
        ("notifications", "delivery"),
        ("notifications", "device"),
    ],
)
def test_officers_find_their_rows_by_the_whole_phone_number_only(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    """A part of a number would tell, digit by digit, a citizen's number the officer
    is not shown; the whole number finds the officer's own rows, not another agency's."""
    own, other = worlds
    client = officer_client(own)
    url = changelist(app_label, model)
    phone = own["citizen"].phone

    for fragment in (phone[-7:], phone[:7], phone[4:], f"{phone[3:6]} {phone[6:9]}"):
        assert shown(client.get(url, {"q": fragment})) == set(), fragment
    for typed in (spaced(phone), phone):
        assert shown(client.get(url, {"q": typed})) == {str(own["rows"][model].pk)}, typed
    assert shown(client.get(url, {"q": spaced(other["citizen"].phone)})) == set()
    assert SupportAuditRecord.objects.count() == 0


# --- Support staff in payments, notifications and bookings ---------------------------


@pytest.mark.parametrize(("app_label", "model"), SUPPORT_SCOPED)
def test_support_staff_see_every_payment_notification_and_booking_row_read_only(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    # Even given "change" and "delete", support's view stays read-only.
    staff = support_staff(f"change_{model}", f"delete_{model}")
    client = admin_client(staff)
    own, other = worlds

    listing = client.get(changelist(app_label, model))
    row = other["rows"][model]
    page = client.get(change(app_label, model, row.pk))

    assert listing.status_code == 200
    assert {str(own["rows"][model].pk), str(row.pk)} <= shown(listing)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    before = type(row).objects.filter(pk=row.pk).values().get()
    client.post(reverse(f"admin:{app_label}_{model}_delete", args=[row.pk]), {"post": "yes"})
    assert type(row).objects.filter(pk=row.pk).values().get() == before


def the_one_admin_look_up(staff: User, subject: User) -> SupportAuditRecord:
    """The only audit record: `staff` looked `subject` up in the admin."""
    record = SupportAuditRecord.objects.get()
    assert (record.actor_id, record.action, record.subject_id, record.channel) == (
        staff.id,
        "lookup",
        subject.id,
        "admin",
    )
    return record


def plain_client(staff: User) -> Client:
    """Signed in without the authenticator code: no support session."""
    client = Client()
    client.force_login(staff)
    return client


@pytest.mark.parametrize(("app_label", "model"), SUPPORT_SCOPED)
def test_the_support_permission_alone_opens_the_support_admins_read_only(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    """No "view" permission of the model: the support permission, in a support session,
    is what opens the admin; outside one, or without the permission, nothing opens."""
    staff = make_staff()  # the Support group: no permission on payments or notifications
    assert not staff.has_perm(f"{app_label}.view_{model}")
    own, other = worlds
    row = other["rows"][model]
    client = admin_client(staff)

    index = client.get(reverse("admin:index")).content.decode()
    listing = client.get(changelist(app_label, model))
    page = client.get(change(app_label, model, row.pk))

    assert changelist(app_label, model) in index
    assert listing.status_code == 200
    assert {str(own["rows"][model].pk), str(row.pk)} <= shown(listing)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert 'name="action"' not in listing.content.decode()  # no action is theirs to run
    before = type(row).objects.filter(pk=row.pk).values().get()
    assert client.post(change(app_label, model, row.pk), {"_save": "1"}).status_code == 403
    delete = reverse(f"admin:{app_label}_{model}_delete", args=[row.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse(f"admin:{app_label}_{model}_add")).status_code == 403
    assert type(row).objects.filter(pk=row.pk).values().get() == before
    assert SupportAuditRecord.objects.count() == 1  # the row opened, once

    # The same staff member outside a support session, and staff with a support session
    # but without the support permission (with or without the model's "view"
    # permission): nothing more than before.
    viewer = make_staff(support=False)
    viewer.user_permissions.add(Permission.objects.get(codename=f"view_{model}"))
    for outsider, expected in (
        (plain_client(staff), 403),
        (admin_client(make_staff(support=False)), 403),
        (admin_client(viewer), 200),
    ):
        index = outsider.get(reverse("admin:index")).content.decode()
        listing = outsider.get(changelist(app_label, model))
        assert listing.status_code == expected
        if expected == 200:
            assert shown(listing) == set()
            assert outsider.get(change(app_label, model, row.pk)).status_code == 302
        else:
            assert changelist(app_label, model) not in index
            assert outsider.get(change(app_label, model, row.pk)).status_code == 403
    assert SupportAuditRecord.objects.count() == 1


def test_support_staff_read_a_notifications_deliveries_without_their_view_permission(
    worlds: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _own, other = worlds
    notification = other["rows"]["notification"]
    client = admin_client(make_staff())

    page = client.get(change("notifications", "notification", notification.pk))

    (inline,) = page.context["inline_admin_formsets"]
    assert inline.formset.model is Delivery
    assert [form.instance for form in inline.formset.forms] == [other["rows"]["delivery"]]
    assert (
        inline.has_view_permission,
        inline.has_add_permission,
        inline.has_change_permission,
        inline.has_delete_permission,
    ) == (True, False, False, False)
    # Superusers see it too, read-only as the notification itself (only
    # notifications.actions writes them: tests/backend/test_admin_audit.py).
    (root_inline,) = (
        root_client()
        .get(change("notifications", "notification", notification.pk))
        .context["inline_admin_formsets"]
    )
    assert [form.instance for form in root_inline.formset.forms] == [other["rows"]["delivery"]]
    assert (root_inline.has_view_permission, root_inline.has_change_permission) == (True, False)


@pytest.mark.parametrize(("app_label", "model"), SUPPORT_SCOPED)
def test_each_row_support_staff_open_is_an_audited_look_up_of_the_citizen(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    staff = support_staff()
    _own, other = worlds
    client = admin_client(staff)

    client.get(changelist(app_label, model))  # the list alone is no look-up
    assert SupportAuditRecord.objects.count() == 0
    client.get(change(app_label, model, other["rows"][model].pk))

    record = the_one_admin_look_up(staff, other["citizen"])
    assert record.details == {"by": AUDITED_AS[model], "found": True}


@pytest.mark.parametrize("who", ["without_totp", "session_without_totp_code", "officer"])
def test_staff_outside_a_support_session_see_no_other_agencys_rows(
    worlds: tuple[dict[str, Any], dict[str, Any]], who: str
) -> None:
    own, other = worlds
    if who == "without_totp":
        client = admin_client(support_staff(totp=False))
    elif who == "session_without_totp_code":
        client = Client()
        client.force_login(support_staff())
    else:
        # An officer who also holds the support permission, in a support session.
        client = officer_client(own)
        officer = AgencyOfficer.objects.get(agency=own["agency"]).user
        officer.groups.add(support_group())
        officer.totp_secret = "gAAAAABtotp-secret-ciphertext-for-tests"
        officer.totp_confirmed_at = timezone.now()
        officer.save(update_fields=["totp_secret", "totp_confirmed_at"])
        session = client.session
        session[SECOND_FACTOR_SESSION_KEY] = second_factor_mark(str(officer.pk), "totp")
        session.save()
    for app_label, model in SUPPORT_SCOPED:
        listing = client.get(changelist(app_label, model))
        assert str(other["rows"][model].pk) not in shown(listing), model
        if who == "officer":
            assert str(own["rows"][model].pk) in shown(listing), model
    assert SupportAuditRecord.objects.count() == 0


@pytest.mark.parametrize(
    ("app_label", "model"), [("notifications", "notification"), ("postal", "deliverybooking")]
)
def test_support_staff_find_a_citizens_rows_by_the_whole_phone_number_only(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    _own, other = worlds
    staff = support_staff()
    client = admin_client(staff)
    url = changelist(app_label, model)
    phone = other["citizen"].phone  # +8491xxxxxxx

    by_fragment = client.get(url, {"q": phone[-7:]})
    assert shown(by_fragment) == set()
    assert SupportAuditRecord.objects.count() == 0

    by_number = client.get(url, {"q": f"0{phone[3:6]} {phone[6:9]} {phone[9:]}"})
    assert shown(by_number) == {str(other["rows"][model].pk)}
    record = SupportAuditRecord.objects.get()
    assert (record.subject_id, record.details) == (
        other["citizen"].id,
        {"by": "phone", "found": True},
    )


@pytest.mark.parametrize(
    ("app_label", "model"), [("notifications", "notification"), ("postal", "deliverybooking")]
)
def test_a_phone_number_written_with_letters_is_no_phone_search(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    _own, other = worlds
    client = admin_client(support_staff())
    url = changelist(app_label, model)
    phone = other["citizen"].phone  # +8498xxxxxxx

    # Read past its letters, each was the citizen's whole number: an audited look-up.
    for term in (f"T{phone[3:6]}-{phone[6:]}", f"SĐT 0{phone[3:]}", f"0{phone[3:]} ext 1"):
        assert shown(client.get(url, {"q": term})) == set(), term
    assert SupportAuditRecord.objects.count() == 0


def test_support_staff_send_a_test_push_with_the_change_right_only(
    worlds: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _own, other = worlds
    device = other["rows"]["device"]
    post = {"action": "send_test_push_action", "_selected_action": [device.pk], "index": "0"}

    admin_client(support_staff()).post(changelist("notifications", "device"), post)
    assert not Notification.objects.filter(type="test").exists()

    admin_client(support_staff("change_device")).post(changelist("notifications", "device"), post)
    assert Notification.objects.filter(type="test", user=other["citizen"]).count() == 1
    device.refresh_from_db()
    assert device.active is True


def test_only_superusers_see_the_payers_ip_address_in_a_checkout_url(
    worlds: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    own, _other = worlds
    payment: Payment = own["rows"]["payment"]
    Payment.objects.filter(pk=payment.pk).update(checkout_url=CHECKOUT_URL)
    url = change("payments", "payment", payment.pk)

    for client in (officer_client(own), admin_client(support_staff())):
        html = client.get(url).content.decode()
        assert PAYER_IP not in html
        assert "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html?…" in html
    html = root_client().get(url).content.decode()
    assert PAYER_IP in html


def test_support_staff_see_a_bookings_recipient_masked_and_no_street(
    worlds: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    own, other = worlds
    booking = other["rows"]["deliverybooking"]
    secrets = ("+84987222333", "0987222333", "Ngõ 9 nhà 3", "Trần Thị Khác")
    url = change("postal", "deliverybooking", booking.pk)

    html = admin_client(make_staff()).get(url).content.decode()

    for secret in secrets:
        assert secret not in html
    for masked in ("+8498•••2333", "T. T. Khác", booking.commune_code, booking.order_number):
        assert masked in html
    assert reverse("admin:postal_savedaddress_change", args=[booking.address_id]) not in html
    # Superusers see it whole, as before; so does the officer shipping their own parcel.
    html = root_client().get(url).content.decode()
    for secret in ("+84987222333", "Ngõ 9 nhà 3", "Trần Thị Khác"):
        assert secret in html
    assert "+8498•••2333" not in html
    own_booking = own["rows"]["deliverybooking"]
    html = (
        officer_client(own)
        .get(change("postal", "deliverybooking", own_booking.pk))
        .content.decode()
    )
    assert ("+84987111000" in html, "Ngõ 1 nhà 1" in html, "+8498•••1000" in html) == (
        True,
        True,
        False,
    )


# --- Rows by dossier code -------------------------------------------------------------------

# The admins that find a dossier's rows by its code.
BY_DOSSIER_CODE = [
    ("payments", "payment"),
    ("notifications", "notification"),
    ("notifications", "delivery"),
    ("postal", "deliverybooking"),
]


def code_parts(world: dict[str, Any]) -> tuple[str, str, str, str]:
    code = world["dossier"].code
    agency, day, number = code.rsplit("-", 2)
    return code, agency, day, number


@pytest.mark.parametrize(("app_label", "model"), BY_DOSSIER_CODE)
def test_support_staff_find_a_dossiers_rows_by_its_whole_code_only(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    _own, other = worlds
    staff = make_staff()
    client = admin_client(staff)
    url = changelist(app_label, model)
    code, agency, day, number = code_parts(other)

    # A code's number has 4 digits or more (5 once the factory's counter passes
    # 9999): three are a fragment whatever the number.
    partial = f"{agency}-{day}-{number[:3]}"
    # The agency's code and the day ("T317-261207") are no phone number, whatever the
    # factory's counter: a phone is written with digits only (auth/phone.py).
    for fragment in (partial, f"{day}-{number}", agency, number, f"{agency}-{day}"):
        assert shown(client.get(url, {"q": fragment})) == set(), fragment
    assert SupportAuditRecord.objects.count() == 0

    by_code = client.get(url, {"q": f"  {code.lower()} "})

    assert shown(by_code) == {str(other["rows"][model].pk)}
    record = the_one_admin_look_up(staff, other["citizen"])
    assert record.details == {"by": "dossier_code", "found": True}

    # A whole code of no dossier: nothing, and a look-up that found no one.
    assert shown(client.get(url, {"q": f"{agency}-{day}-9999"})) == set()
    missed = SupportAuditRecord.objects.exclude(pk=record.pk).get()
    assert (missed.subject_id, missed.details) == (None, {"by": "dossier_code", "found": False})
    # What was typed is never recorded.
    assert agency not in repr(list(SupportAuditRecord.objects.values()))


@pytest.mark.parametrize(("app_label", "model"), BY_DOSSIER_CODE)
def test_staff_outside_a_support_session_find_no_row_by_dossier_code(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    _own, other = worlds
    url = changelist(app_label, model)
    code = other["dossier"].code
    viewer = make_staff(support=False)
    viewer.user_permissions.add(Permission.objects.get(codename=f"view_{model}"))
    with_support_and_view = support_staff()

    for client in (admin_client(viewer), plain_client(with_support_and_view)):
        assert shown(client.get(url, {"q": code})) == set()
    for client in (admin_client(make_staff(support=False)), plain_client(make_staff())):
        assert client.get(url, {"q": code}).status_code == 403
    assert SupportAuditRecord.objects.count() == 0
    # The same staff member in a support session finds it.
    assert shown(admin_client(with_support_and_view).get(url, {"q": code})) == {
        str(other["rows"][model].pk)
    }


@pytest.mark.parametrize(("app_label", "model"), BY_DOSSIER_CODE)
def test_officers_find_their_own_dossiers_rows_by_the_whole_code_only(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    own, other = worlds
    client = officer_client(own)
    url = changelist(app_label, model)
    code, _agency, day, number = code_parts(own)

    assert shown(client.get(url, {"q": code.lower()})) == {str(own["rows"][model].pk)}
    assert shown(client.get(url, {"q": other["dossier"].code})) == set()
    for fragment in (code[:-1], f"{day}-{number}"):
        assert shown(client.get(url, {"q": fragment})) == set(), fragment
    assert SupportAuditRecord.objects.count() == 0


@pytest.mark.parametrize(("app_label", "model"), BY_DOSSIER_CODE)
def test_superusers_find_rows_by_any_part_of_a_dossier_code(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    _own, other = worlds
    _code, _agency, day, number = code_parts(other)

    found = root_client().get(changelist(app_label, model), {"q": f"{day}-{number}"})

    assert shown(found) == {str(other["rows"][model].pk)}
    # A search, audited (never what was typed): tests/backend/test_admin_audit.py.
    assert SupportAuditRecord.objects.get().details == {"by": "search", "found": True}


def test_a_bookings_order_number_finds_it_only_whole_but_for_superusers(
    worlds: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """The order number is the dossier code and a number: a part of it would be a part of
    the code. Staff other than superusers find a booking by the whole number only."""
    own, _other = worlds
    booking = own["rows"]["deliverybooking"]
    url = changelist("postal", "deliverybooking")
    whole, part = booking.order_number, booking.order_number[:-1]
    clients = {
        "support": admin_client(make_staff()),
        "officer": officer_client(own),
        "superuser": root_client(),
    }

    found = {
        (who, term): shown(client.get(url, {"q": term}))
        for who, client in clients.items()
        for term in (whole.lower(), part)
    }

    mine = {str(booking.pk)}
    assert found == {
        ("support", whole.lower()): mine,
        ("support", part): set(),
        ("officer", whole.lower()): mine,
        ("officer", part): set(),
        ("superuser", whole.lower()): mine,
        ("superuser", part): mine,
    }


def test_no_admin_of_a_dossiers_rows_searches_the_dossier_code_by_a_part_of_it() -> None:
    """The code is searched through `searches_by_dossier_code` (whole for staff other than
    superusers), never as a search field, which Django matches by any part."""
    listed = {
        f"{model._meta.app_label}.{model._meta.model_name}": name
        for model, model_admin in django_admin.site._registry.items()
        if isinstance(model_admin, OfficerOrSupportAdmin)
        for name in model_admin.search_fields
        if name.lstrip("=^@").split("__")[-2:] == ["dossier", "code"]
    }
    assert listed == {}


# --- Query counts ----------------------------------------------------------------------------


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


def test_the_list_pages_cost_the_same_queries_whatever_the_number_of_rows(
    worlds: tuple[dict[str, Any], dict[str, Any]], private_rows: dict[str, Any]
) -> None:
    support = admin_client(support_staff())
    root = root_client()
    pages = [(support, changelist(app_label, model)) for app_label, model in SUPPORT_SCOPED] + [
        (support, changelist("accounts", "user"))
    ]
    pages += [(root, changelist(app_label, model)) for app_label, model in SUPERUSER_ONLY]
    for client, url in pages:
        client.get(url)  # warm: the content types, the session
    before = [queries(client, url) for client, url in pages]

    for n in range(3):
        agency_world(f"Người Thứ {n}", f"+8498733300{n}", f"Ngõ {n}", f"MORE{n}")
        citizen = make_user(full_name=f"Chủ Doanh Nghiệp {n}")
        sign_in(citizen, ip=SESSION_IP)
        organisation = make_organisation(citizen)
        Invitation.objects.create(
            organisation=organisation,
            phone=f"+8498655500{n}",
            expires_at=timezone.now() + dt.timedelta(days=7),
        )
        NationalIdentity.objects.create(user=citizen, issuer="i", subject=f"s{n}", level=1)
        ReconciliationReport.objects.create(day=timezone.localdate() - dt.timedelta(days=n + 1))

    after = [queries(client, url) for client, url in pages]
    assert dict(zip([url for _, url in pages], after, strict=True)) == dict(
        zip([url for _, url in pages], before, strict=True)
    )
