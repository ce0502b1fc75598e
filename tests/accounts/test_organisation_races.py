"""Membership changes that meet: each takes the organisation's lock first, so the
second waits for the first and answers from what it left (never a 500 or a 503)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from auth.models import Membership
from tests.accounts.staff import client_for
from tests.concurrency import in_threads, on_sql, statement, waiting_for
from tests.conftest import make_user
from tests.factories import make_organisation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_watching_changed_while_a_manager_removes_the_member_is_a_404() -> None:
    owner, member = make_user(), make_user()
    organisation = make_organisation(owner)
    Membership.objects.create(organisation=organisation, user=member)
    owner_api, member_api = client_for(owner), client_for(member)
    base = f"/api/v1/organisations/{organisation.id}"
    removed, member_moved = threading.Event(), threading.Event()

    def remove() -> Any:
        # Hold the removal, deleted but not committed, until the member's request has
        # read its membership (without the lock) or is about to wait for the lock.
        def deleted() -> None:
            removed.set()
            waiting_for(member_moved)()

        with on_sql(after=(statement("DELETE", "accounts_membership"), deleted)):
            return owner_api.delete(f"{base}/members/{member.id}")

    def watch() -> Any:
        waiting_for(removed)()
        with on_sql(
            before=(statement("SELECT", "accounts_organisation", locking=True), member_moved.set),
            after=(statement("SELECT", "accounts_membership", locking=False), member_moved.set),
        ):
            return member_api.put(f"{base}/watching", {"watching": False})

    removal, watching = in_threads(remove, watch)

    assert removal.status_code == 204
    assert watching.status_code == 404, watching.json()
    assert watching.json()["code"] == "not_found"
    assert not Membership.objects.filter(organisation=organisation, user=member).exists()
