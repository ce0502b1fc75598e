"""The admin shows the linked national identity and its level (Django test client)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from auth.models import User
from fakes.identity_provider import FakeIdentityProvider, default_person
from tests.accounts.national import national_callback
from tests.accounts.staff import make_staff
from tests.accounts.test_support_admin import admin_client
from tests.conftest import ApiClient, make_user

pytestmark = pytest.mark.django_db


def test_the_user_page_shows_the_linked_identity_and_its_level(
    idp: FakeIdentityProvider,
) -> None:
    national_callback(ApiClient())
    citizen = User.objects.get(phone=default_person()["phone_number"])
    unlinked = make_user()
    client = admin_client(make_staff(is_superuser=True))

    linked_page = client.get(reverse("admin:accounts_user_change", args=[citizen.pk]))
    unlinked_page = client.get(reverse("admin:accounts_user_change", args=[unlinked.pk]))
    listing = client.get(reverse("admin:accounts_user_changelist"))

    assert linked_page.status_code == 200
    assert "Đã liên kết, mức 2" in linked_page.content.decode()
    assert "Chưa liên kết" in unlinked_page.content.decode()
    assert "Mức 2" in listing.content.decode()


def test_the_support_lookup_shows_the_identity_level(idp: FakeIdentityProvider) -> None:
    national_callback(ApiClient())
    client = admin_client(make_staff())

    response = client.post(
        reverse("admin:accounts_support_lookup"), {"phone": "0987654321", "lookup": "1"}
    )

    page = response.content.decode()
    assert "<th>national_identity_level</th><td>2</td>" in page
