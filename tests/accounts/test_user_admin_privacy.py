"""The admin's user pages follow the support console's rules for everyone but superusers.

Staff other than superusers reach them only as support staff with TOTP, in an admin
session opened with it; they see the masked phone, citizen ID and birth date, cannot
search by citizen ID (the audited look-up does that), and every account they open
is an audited look-up. They find an account by phone only with the whole number, as
the support look-up does (an audited look-up, which records neither the number nor a
part of it). Citizen ID conflicts follow the same rules. A superuser moving an
account to another number there ends its sign-ins, as a phone change in the app does.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse, reverse_lazy
from django.utils import timezone

from auth.actions import sign_in as sign_in_actions
from auth.actions.sign_in import DeviceInfo
from auth.admin_roles import MaskedFieldsAdmin
from auth.models import CitizenIdConflict, OtpChallenge, SupportAuditRecord, SupportReset, User
from tests.accounts.conftest import PASSWORD
from tests.accounts.staff import make_citizen, make_staff
from tests.accounts.test_support_admin import admin_client
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

PHONE = "+84912345678"
CCCD = "001099012345"
NAME = "Đỗ Văn Tra Cứu"

# The user page's form as a superuser saves it for the `citizen` below.
USER_FORM = {
    "full_name": NAME,
    "phone": PHONE,
    "verification_level": "1",
    "citizen_id": CCCD,
    "birth_date": "1990-01-02",
    "language": "vi",
    "is_active": "on",
    "_save": "1",
}


@pytest.fixture
def citizen() -> User:
    citizen = make_citizen(phone=PHONE, full_name=NAME)
    User.objects.filter(pk=citizen.pk).update(citizen_id=CCCD, birth_date=dt.date(1990, 1, 2))
    # It also entered another number, which another account holds.
    holder = make_citizen(phone="+84987650002", full_name="Hồ Văn Giữ Số")
    User.objects.filter(pk=holder.pk).update(citizen_id="001099054321")
    CitizenIdConflict.objects.create(
        citizen_id="001099054321",
        verified_user=citizen,
        declared_by=holder,
        source=CitizenIdConflict.Source.DECLARED,
    )
    return citizen


def user_pages(citizen: User) -> list[str]:
    return [
        reverse("admin:accounts_user_changelist") + "?q=" + PHONE[1:],
        reverse("admin:accounts_user_change", args=[citizen.pk]),
        reverse("admin:accounts_user_history", args=[citizen.pk]),
        reverse("admin:accounts_user_delete", args=[citizen.pk]),
        reverse("admin:accounts_user_add"),
    ]


def test_support_staff_see_the_account_masked_and_opening_it_is_audited(citizen: User) -> None:
    staff = make_staff()
    client = admin_client(staff)

    by_phone = client.get(reverse("admin:accounts_user_changelist"), {"q": PHONE[1:]})
    page = client.get(reverse("admin:accounts_user_change", args=[citizen.pk]))

    assert by_phone.status_code == 200
    assert NAME in by_phone.content.decode()
    assert PHONE not in by_phone.content.decode()
    assert page.status_code == 200
    html = page.content.decode()
    assert "+8491•••5678" in html
    assert "•••••••••345" in html
    assert "•••••••••321" in html
    assert "••/••/••••" in html
    for secret in (PHONE, CCCD, "001099054321", "1990"):
        assert secret not in html
    # The search by the whole number, then the page opened: two look-ups.
    records = SupportAuditRecord.objects.order_by("id")
    assert [(r.actor_id, r.action, r.subject_id, r.channel, r.details) for r in records] == [
        (staff.id, "lookup", citizen.id, "admin", {"by": "phone", "found": True}),
        (staff.id, "lookup", citizen.id, "admin", {"by": "id", "found": True}),
    ]


def test_support_staff_cannot_find_an_account_by_citizen_id_in_the_list(citizen: User) -> None:
    client = admin_client(make_staff())

    listing = client.get(reverse("admin:accounts_user_changelist"), {"q": CCCD})

    assert listing.status_code == 200
    assert NAME not in listing.content.decode()
    assert SupportAuditRecord.objects.count() == 0


def test_support_staff_with_change_user_cannot_edit_the_birth_date(citizen: User) -> None:
    staff = make_staff()
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="change_user")
    )
    url = reverse("admin:accounts_user_change", args=[citizen.pk])
    client = admin_client(staff)
    assert 'name="birth_date"' not in client.get(url).content.decode()
    client.post(url, {"full_name": NAME, "language": "vi", "birth_date": "1991-03-04"})
    citizen.refresh_from_db()
    assert citizen.birth_date == dt.date(1990, 1, 2)


@pytest.mark.parametrize(
    "who",
    ["staff_without_totp", "session_without_totp_code", "staff_without_support_permission"],
)
def test_the_user_pages_refuse_staff_the_support_pages_refuse(citizen: User, who: str) -> None:
    if who == "staff_without_totp":
        client = admin_client(make_staff(totp=False))
    elif who == "session_without_totp_code":
        client = Client()
        client.force_login(make_staff())  # TOTP on the account, not used to sign in
    else:
        officer = make_user(is_staff=True, full_name="Cán bộ Xem")
        officer.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="accounts", codename__in=["view_user", "change_user"]
            )
        )
        client = admin_client(officer)
    for url in user_pages(citizen):
        response = client.get(url)
        assert response.status_code == 403, url
        html = response.content.decode()
        assert NAME not in html, url
        assert "5678" not in html, url
    assert client.get(reverse("admin:accounts_support_lookup")).status_code == 403
    assert SupportAuditRecord.objects.count() == 0


def test_superusers_still_see_and_search_everything(citizen: User) -> None:
    root = make_user(is_staff=True, is_superuser=True, full_name="Quản Trị")
    client = Client()
    client.force_login(root)  # no TOTP: not support staff, and not refused here

    listing = client.get(reverse("admin:accounts_user_changelist"), {"q": CCCD})
    page = client.get(reverse("admin:accounts_user_change", args=[citizen.pk]))

    assert NAME in listing.content.decode()
    assert page.status_code == 200
    assert 'name="phone"' in page.content.decode()
    assert CCCD in page.content.decode()
    # The search by a whole citizen ID (a look-up of its account, never the number typed)
    # and the account opened are audited look-ups, TOTP or not.
    records = SupportAuditRecord.objects.order_by("id")
    assert [(r.actor_id, r.subject_id, r.details) for r in records] == [
        (root.id, citizen.id, {"by": "citizen_id", "found": True}),
        (root.id, citizen.id, {"by": "id", "found": True}),
    ]
    assert CCCD not in repr(list(records.values()))


def test_a_superuser_with_totp_opening_an_account_is_audited_too(citizen: User) -> None:
    root = make_staff(is_superuser=True)
    page = admin_client(root).get(reverse("admin:accounts_user_change", args=[citizen.pk]))
    assert CCCD in page.content.decode()
    assert SupportAuditRecord.objects.get().actor_id == root.id


def support_permission_only() -> User:
    """Support staff with the support permission and no "view" permission of any model."""
    staff = make_staff(support=False, full_name="Đặng Thị Chỉ Hỗ Trợ")
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="support_reset")
    )
    return staff


def test_the_support_permission_alone_opens_the_user_pages_and_the_support_records(
    citizen: User,
) -> None:
    """As the README's table says of support staff: the support pages, the user pages
    (masked, each account opened an audited look-up) and the records the support pages
    lead to (an opened reset, the audit trail), with no "view" permission of them."""
    staff = support_permission_only()
    assert not any(
        staff.has_perm(f"accounts.view_{model}")
        for model in ("user", "supportreset", "supportauditrecord")
    )
    client = admin_client(staff)

    index = client.get(reverse("admin:index")).content.decode()
    listing = client.get(reverse("admin:accounts_user_changelist"), {"q": "0912 345 678"})
    page = client.get(reverse("admin:accounts_user_change", args=[citizen.pk]))
    opened = client.post(
        reverse("admin:accounts_support_reset", args=[citizen.pk]),
        {
            "kind": "lost_authenticator",
            "reason": "Mất điện thoại có ứng dụng xác thực",
            "evidence": "CCCD checked in person at the counter",
            "ticket_number": "HT-2026-0009",
            "new_phone": "",
            "open": "1",
        },
        follow=True,
    )
    resets = client.get(reverse("admin:accounts_supportreset_changelist"))
    records = client.get(reverse("admin:accounts_supportauditrecord_changelist"))
    record = SupportAuditRecord.objects.order_by("id").first()
    assert record is not None
    record_page = client.get(reverse("admin:accounts_supportauditrecord_change", args=[record.pk]))

    for model in ("user", "supportreset", "supportauditrecord"):
        assert reverse(f"admin:accounts_{model}_changelist") in index, model
    assert [row.pk for row in listing.context["cl"].result_list] == [citizen.pk]
    assert page.status_code == 200
    html = page.content.decode()
    assert "+8491•••5678" in html
    assert "•••••••••345" in html
    for secret in (PHONE, CCCD, "1990"):
        assert secret not in html
    assert 'name="_save"' not in html
    before = User.objects.filter(pk=citizen.pk).values().get()
    changed = client.post(
        reverse("admin:accounts_user_change", args=[citizen.pk]),
        {"full_name": "Tên Mới", "language": "en", "_save": "1"},
    )
    assert changed.status_code == 403
    assert User.objects.filter(pk=citizen.pk).values().get() == before
    reset = SupportReset.objects.get()
    assert opened.redirect_chain == [
        (reverse("admin:accounts_supportreset_change", args=[reset.pk]), 302)
    ]
    assert opened.status_code == 200
    assert "HT-2026-0009" in opened.content.decode()
    assert [row.pk for row in resets.context["cl"].result_list] == [reset.pk]
    assert records.status_code == 200
    assert record_page.status_code == 200
    assert [
        (r.action, r.subject_id, r.details.get("by"))
        for r in SupportAuditRecord.objects.order_by("id")
    ][:2] == [
        ("lookup", citizen.id, "phone"),
        ("lookup", citizen.id, "id"),
    ]


def test_support_staff_change_no_account_in_the_user_pages(citizen: User) -> None:
    """Read-only, whatever their permissions of users: an account changes through the
    support flow (audited), or in a superuser's hands."""
    staff = make_staff()
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts",
            codename__in=["change_user", "add_user", "delete_user"],
        )
    )
    client = admin_client(staff)
    url = reverse("admin:accounts_user_change", args=[citizen.pk])
    before = User.objects.filter(pk=citizen.pk).values().get()

    changed = client.post(url, {"full_name": "Tên Mới", "language": "en", "_save": "1"})
    deleted = client.post(reverse("admin:accounts_user_delete", args=[citizen.pk]), {"post": "yes"})
    added = client.get(reverse("admin:accounts_user_add"))

    assert (changed.status_code, deleted.status_code, added.status_code) == (403, 403, 403)
    assert User.objects.filter(pk=citizen.pk).values().get() == before


# --- Searching by phone -------------------------------------------------------------------


@pytest.mark.parametrize("fragment", ["912345", "12345678", "9123 4567", "+849123"])
def test_a_part_of_a_phone_number_finds_no_account_for_support_staff(
    citizen: User, fragment: str
) -> None:
    """A fragment would let staff work out the digits the masked phone hides."""
    client = admin_client(make_staff())

    listing = client.get(reverse("admin:accounts_user_changelist"), {"q": fragment})

    assert listing.status_code == 200
    assert NAME not in listing.content.decode()
    assert list(listing.context["cl"].result_list) == []
    assert SupportAuditRecord.objects.count() == 0


@pytest.mark.parametrize("typed", ["0912345678", "0912 345 678", "+84912345678"])
def test_a_search_by_the_whole_number_is_an_audited_look_up(citizen: User, typed: str) -> None:
    staff = make_staff()
    client = admin_client(staff)

    # With the filters' counts ("_facets"), the list reads its rows more than once.
    listing = client.get(reverse("admin:accounts_user_changelist"), {"q": typed, "_facets": "1"})

    assert [row.pk for row in listing.context["cl"].result_list] == [citizen.pk]
    html = listing.content.decode()
    results = html[html.index('id="result_list"') :]
    assert PHONE not in results  # (the search box shows what the staff member typed)
    assert "+8491•••5678" in results
    record = SupportAuditRecord.objects.get()
    assert (record.actor_id, record.action, record.subject_id, record.channel) == (
        staff.id,
        "lookup",
        citizen.id,
        "admin",
    )
    # How and whether it was found: never the number typed.
    assert record.details == {"by": "phone", "found": True}


def test_a_search_for_a_number_nobody_has_is_audited_as_not_found(citizen: User) -> None:
    staff = make_staff()
    listing = admin_client(staff).get(
        reverse("admin:accounts_user_changelist"), {"q": "0987000111"}
    )
    assert list(listing.context["cl"].result_list) == []
    record = SupportAuditRecord.objects.get()
    assert (record.actor_id, record.subject_id, record.details) == (
        staff.id,
        None,
        {"by": "phone", "found": False},
    )


def test_support_staff_still_search_by_name_without_a_look_up(citizen: User) -> None:
    listing = admin_client(make_staff()).get(
        reverse("admin:accounts_user_changelist"), {"q": "Tra Cứu"}
    )
    assert [row.pk for row in listing.context["cl"].result_list] == [citizen.pk]
    assert SupportAuditRecord.objects.count() == 0


def test_superusers_search_by_any_part_of_a_number(citizen: User) -> None:
    root = make_user(is_staff=True, is_superuser=True, full_name="Quản Trị")
    client = Client()
    client.force_login(root)
    listing = client.get(reverse("admin:accounts_user_changelist"), {"q": "2345678"})
    assert citizen.pk in [row.pk for row in listing.context["cl"].result_list]


def test_support_records_are_searched_by_the_whole_number_only(citizen: User) -> None:
    staff = make_staff()
    client = admin_client(staff)
    client.get(reverse("admin:accounts_user_change", args=[citizen.pk]))  # one record
    url = reverse("admin:accounts_supportauditrecord_changelist")

    by_fragment = client.get(url, {"q": "2345678"})
    by_number = client.get(url, {"q": "0912345678"})

    assert list(by_fragment.context["cl"].result_list) == []
    assert {row.subject_id for row in by_number.context["cl"].result_list} == {citizen.id}
    assert list(SupportAuditRecord.objects.order_by("id").values_list("details", flat=True)) == [
        {"by": "id", "found": True},
        {"by": "phone", "found": True},
    ]


# --- Citizen ID conflicts -------------------------------------------------------------------


def conflict_of(citizen: User) -> CitizenIdConflict:
    holder = make_citizen(phone="+84987650001", full_name="Vũ Thị Xác Minh")
    return CitizenIdConflict.objects.create(
        citizen_id=CCCD, verified_user=holder, declared_by=citizen
    )


CONFLICTS = reverse_lazy("admin:accounts_citizenidconflict_changelist")


def conflict_page(conflict: CitizenIdConflict, page: str = "change") -> str:
    return reverse(f"admin:accounts_citizenidconflict_{page}", args=[conflict.pk])


def test_support_staff_see_a_citizen_id_conflict_masked_and_opening_it_is_audited(
    citizen: User,
) -> None:
    """On the support permission alone, as payments, notifications and bookings: no
    "view" permission of conflicts."""
    conflict = conflict_of(citizen)
    staff = make_staff()
    assert not staff.has_perm("accounts.view_citizenidconflict")
    client = admin_client(staff)

    index = client.get(reverse("admin:index")).content.decode()
    listing = client.get(CONFLICTS)
    page = client.get(conflict_page(conflict))

    assert str(CONFLICTS) in index
    assert listing.status_code == 200
    # With the number the citizen entered in the app, held by another account.
    entered = CitizenIdConflict.objects.get(source=CitizenIdConflict.Source.DECLARED)
    assert [row.pk for row in listing.context["cl"].result_list] == [conflict.pk, entered.pk]
    assert page.status_code == 200
    html = page.content.decode()
    assert CCCD not in html
    assert "•••••••••345" in html
    assert 'name="_save"' not in html
    records = SupportAuditRecord.objects.order_by("id")
    assert [(r.actor_id, r.action, r.subject_id, r.channel, r.details) for r in records] == [
        (staff.id, "lookup", who, "admin", {"by": "citizen_id_conflict", "found": True})
        for who in (conflict.verified_user_id, citizen.id)
    ]


def test_support_staff_change_no_citizen_id_conflict(citizen: User) -> None:
    conflict = conflict_of(citizen)
    client = admin_client(make_staff())
    before = CitizenIdConflict.objects.filter(pk=conflict.pk).values().get()

    changed = client.post(conflict_page(conflict), {"resolved_at_0": "2026-01-01", "_save": "1"})
    deleted = client.post(conflict_page(conflict, "delete"), {"post": "yes"})
    added = client.get(reverse("admin:accounts_citizenidconflict_add"))

    assert (changed.status_code, deleted.status_code, added.status_code) == (403, 403, 403)
    assert CitizenIdConflict.objects.filter(pk=conflict.pk).values().get() == before


def test_staff_outside_a_support_session_are_refused_citizen_id_conflicts(
    citizen: User,
) -> None:
    """The "view" permission of conflicts opens nothing outside a support session, nor
    without the support permission."""
    conflict = conflict_of(citizen)
    view = Permission.objects.get(
        content_type__app_label="accounts", codename="view_citizenidconflict"
    )
    support_with_view, viewer = make_staff(), make_staff(support=False)
    for staff in (support_with_view, viewer):
        staff.user_permissions.add(view)
    plain = Client()
    plain.force_login(support_with_view)  # signed in without the authenticator code

    for client in (plain, admin_client(viewer), admin_client(make_staff(support=False))):
        for url in (CONFLICTS, conflict_page(conflict)):
            response = client.get(url)
            assert response.status_code == 403, url
            html = response.content.decode()
            assert CCCD not in html
            assert "•••••••••345" not in html
    assert SupportAuditRecord.objects.count() == 0


def test_superusers_see_citizen_id_conflicts_without_a_support_session(citizen: User) -> None:
    """As the user pages: superusers see every account page, support session or not."""
    conflict = conflict_of(citizen)
    root = Client()
    root.force_login(make_user(password=None, is_staff=True, is_superuser=True))

    page = root.get(conflict_page(conflict))

    assert page.status_code == 200
    assert CCCD in page.content.decode()
    # No TOTP, and still audited: both accounts the conflict shows were looked up.
    assert SupportAuditRecord.objects.filter(details__by="citizen_id_conflict").count() == 2


def test_a_citizen_id_conflict_is_refused_to_staff_the_support_pages_refuse(
    citizen: User,
) -> None:
    conflict = conflict_of(citizen)
    staff = make_staff(totp=False)
    staff.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="accounts", codename="view_citizenidconflict"
        )
    )
    page = admin_client(staff).get(
        reverse("admin:accounts_citizenidconflict_change", args=[conflict.pk])
    )
    assert page.status_code == 403
    assert CCCD not in page.content.decode()
    assert SupportAuditRecord.objects.count() == 0


def test_superusers_see_the_whole_citizen_id_of_a_conflict(citizen: User) -> None:
    conflict = conflict_of(citizen)
    root = make_staff(is_superuser=True)
    page = admin_client(root).get(
        reverse("admin:accounts_citizenidconflict_change", args=[conflict.pk])
    )
    html = page.content.decode()
    assert CCCD in html
    assert "•••••••••345" not in html
    assert SupportAuditRecord.objects.filter(actor=root).count() == 2


def test_a_superuser_correcting_the_declared_number_settles_the_conflict(citizen: User) -> None:
    """The conflict page shows when it was settled."""
    conflict = conflict_of(citizen)
    client = admin_client(make_staff(is_superuser=True))
    url = reverse("admin:accounts_user_change", args=[citizen.pk])
    form = {**USER_FORM, "full_name": "Đỗ Văn Đổi Tên"}

    renamed = client.post(url, form)  # the number kept: still in dispute
    conflict.refresh_from_db()
    assert renamed.status_code == 302
    assert conflict.resolved_at is None

    saved = client.post(url, {**form, "citizen_id": ""})

    assert saved.status_code == 302
    citizen.refresh_from_db()
    assert citizen.citizen_id is None
    conflict.refresh_from_db()
    assert conflict.resolved_at is not None
    page = admin_client(make_staff()).get(conflict_page(conflict)).content.decode()
    shown = page[page.index('class="form-row field-resolved_at"') :]
    assert "Giải quyết lúc" in shown[: shown.index("</div>")]
    assert f"{timezone.localtime(conflict.resolved_at):%Y}" in shown[: shown.index("</fieldset>")]
    listing = admin_client(make_staff()).get(CONFLICTS, {"resolved_at__isnull": "False"})
    assert [row.pk for row in listing.context["cl"].result_list] == [conflict.pk]


def test_a_superuser_moving_an_account_to_another_number_ends_its_sign_ins(
    citizen: User,
) -> None:
    """As a phone change in the app: sessions, sign-ins in progress and devices end."""
    live, _tokens = sign_in(citizen, device_id="live-phone")
    _old, old_tokens = sign_in(citizen, device_id="old-phone")
    assert ApiClient(old_tokens.access_token).post("/api/v1/auth/logout").status_code == 204
    started = ApiClient().post(
        "/api/v1/auth/login", {"phone": PHONE, "password": PASSWORD, "device_id": "thief"}
    )
    assert started.json()["second_factor_required"] is True
    old_phone = DeviceInfo("old-phone", device_key=old_tokens.device_key)
    assert sign_in_actions._known_device(citizen, old_phone)
    url = reverse("admin:accounts_user_change", args=[citizen.pk])

    saved = admin_client(make_staff(is_superuser=True)).post(
        url, {**USER_FORM, "phone": "+84987650003"}
    )

    assert saved.status_code == 302
    live.refresh_from_db()
    assert live.revoked_reason == "phone_changed"
    assert not sign_in_actions._known_device(citizen, old_phone)
    challenge = OtpChallenge.objects.get(pk=started.json()["challenge_id"])
    assert challenge.consumed_at is not None


def test_support_staff_do_not_see_the_ip_address_in_an_audit_record(citizen: User) -> None:
    opener = make_staff(full_name="Lý Văn Mở")
    record = SupportAuditRecord.objects.create(
        actor=opener, action="lookup", subject=citizen, channel="api", ip="198.51.100.9"
    )
    url = reverse("admin:accounts_supportauditrecord_change", args=[record.pk])

    support_page = admin_client(make_staff()).get(url)
    root_page = admin_client(make_staff(is_superuser=True)).get(url)

    assert support_page.status_code == 200
    assert "198.51.100.9" not in support_page.content.decode()
    assert "198.51.100.9" in root_page.content.decode()


# --- Filters in the URL ----------------------------------------------------------------------


def masked_admins() -> list[tuple[str, str, str]]:
    """Every registered admin that shows fields masked: (app label, model, field)."""
    return sorted(
        (model._meta.app_label, model._meta.model_name, field)
        for model, model_admin in django_admin.site._registry.items()
        if isinstance(model_admin, MaskedFieldsAdmin)
        for field in model_admin.masked_fields
    )


@pytest.mark.parametrize(("app_label", "model", "field"), masked_admins())
def test_a_masked_field_is_no_filter_in_the_url_to_support_staff(
    app_label: str, model: str, field: str
) -> None:
    """Django's admin takes a filter on any field of the row itself from the URL: on a
    field shown masked, the rows listed would tell it a character at a time. A new
    masked field is walked here as it is added."""
    client = admin_client(make_staff())
    url = reverse(f"admin:{app_label}_{model}_changelist")
    assert client.get(url).status_code == 200  # the list itself is theirs
    for lookup in (f"{field}__startswith", f"{field}__exact", field):
        response = client.get(url, {lookup: "0"})
        assert response.status_code == 400, (model, lookup)
    assert SupportAuditRecord.objects.count() == 0


def test_support_staff_read_no_number_a_digit_at_a_time_superusers_filter_by_it(
    citizen: User,
) -> None:
    url = reverse("admin:accounts_user_changelist")
    by_part = {
        "citizen_id__startswith": CCCD[:4],
        "phone__startswith": PHONE[:7],
        "birth_date__year": "1990",
    }
    support_staff = admin_client(make_staff())
    superuser = admin_client(make_staff(is_superuser=True))
    for lookup, value in by_part.items():
        refused = support_staff.get(url, {lookup: value})
        assert refused.status_code == 400, lookup
        assert NAME not in refused.content.decode()
        shown = superuser.get(url, {lookup: value})  # they see the number whole anyway
        assert shown.status_code == 200, lookup
        assert NAME in shown.content.decode()
    assert SupportAuditRecord.objects.count() == 0
