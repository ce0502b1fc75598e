"""The admin's user pages follow the support console's rules for everyone but superusers.

Staff other than superusers reach them only as support staff with TOTP, in an admin
session opened with it; they see the masked phone, citizen ID and birth date, cannot
search by citizen ID (the audited look-up does that), and every account they open
is an audited look-up.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from auth.models import SupportAuditRecord, User
from tests.accounts.staff import make_citizen, make_staff
from tests.accounts.test_support_admin import admin_client
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PHONE = "+84912345678"
CCCD = "001099012345"
NAME = "Đỗ Văn Tra Cứu"


@pytest.fixture
def citizen() -> User:
    citizen = make_citizen(phone=PHONE, full_name=NAME)
    User.objects.filter(pk=citizen.pk).update(
        citizen_id=CCCD, citizen_id_conflict="001099054321", birth_date=dt.date(1990, 1, 2)
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
    record = SupportAuditRecord.objects.get()
    assert (record.actor_id, record.action, record.subject_id, record.channel) == (
        staff.id,
        "lookup",
        citizen.id,
        "admin",
    )
    assert record.details == {"by": "id", "found": True}


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
    assert SupportAuditRecord.objects.count() == 0


def test_a_superuser_with_totp_opening_an_account_is_audited_too(citizen: User) -> None:
    root = make_staff(is_superuser=True)
    page = admin_client(root).get(reverse("admin:accounts_user_change", args=[citizen.pk]))
    assert CCCD in page.content.decode()
    assert SupportAuditRecord.objects.get().actor_id == root.id
