"""Membership changes that meet: each takes the organisation's lock first, so the
second waits for the first and answers from what it left (never a 500 or a 503)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from auth.models import Invitation, Membership
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


def test_accepting_an_invitation_while_it_is_revoked_waits_instead_of_deadlocking() -> None:
    owner, invitee = make_user(), make_user()
    organisation = make_organisation(owner)
    owner_api, invitee_api = client_for(owner), client_for(invitee)
    invited = owner_api.post(
        f"/api/v1/organisations/{organisation.id}/invitations", {"phone": invitee.phone}
    )
    assert invited.status_code == 201, invited.json()
    invitation_id = invited.json()["id"]
    invitation_locked, revoker_has_organisation = threading.Event(), threading.Event()
    holding_invitation = threading.local()

    def wait_if_holding_the_invitation() -> None:
        # Accepting locked the invitation without the organisation: let the revocation
        # take the organisation's lock now (then each waits for the other's).
        if getattr(holding_invitation, "yes", False):
            waiting_for(revoker_has_organisation)()

    def invitation_lock_taken() -> None:
        holding_invitation.yes = True
        invitation_locked.set()

    def accept() -> Any:
        with on_sql(
            before=(
                statement("SELECT", "accounts_organisation", locking=True),
                wait_if_holding_the_invitation,
            ),
            after=(statement("SELECT", "accounts_invitation", locking=True), invitation_lock_taken),
        ):
            return invitee_api.post(f"/api/v1/organisations/invitations/{invitation_id}/accept")

    def revoke() -> Any:
        waiting_for(invitation_locked)()
        with on_sql(
            after=(
                statement("SELECT", "accounts_organisation", locking=True),
                revoker_has_organisation.set,
            )
        ):
            return owner_api.delete(
                f"/api/v1/organisations/{organisation.id}/invitations/{invitation_id}"
            )

    accepted, revoked = in_threads(accept, revoke)

    assert accepted.status_code == 200, accepted.json()
    # The revocation waited for the acceptance: the invitation is no longer pending.
    assert revoked.status_code == 404, revoked.json()
    assert revoked.json()["code"] == "not_found"
    assert Invitation.objects.get(pk=invitation_id).status == Invitation.Status.ACCEPTED
    assert Membership.objects.filter(organisation=organisation, user=invitee).exists()


def test_declining_while_the_invitation_is_revoked_keeps_one_answer() -> None:
    owner, invitee = make_user(), make_user()
    organisation = make_organisation(owner)
    owner_api, invitee_api = client_for(owner), client_for(invitee)
    invited = owner_api.post(
        f"/api/v1/organisations/{organisation.id}/invitations", {"phone": invitee.phone}
    )
    invitation_id = invited.json()["id"]
    revoker_may_go_on = threading.Event()
    revoker_read_invitation = threading.Event()

    def revoke() -> Any:
        # Hold the revocation once it has read the invitation as pending.
        def read() -> None:
            revoker_read_invitation.set()
            waiting_for(revoker_may_go_on)()

        with on_sql(after=(statement("SELECT", "accounts_invitation"), read)):
            return owner_api.delete(
                f"/api/v1/organisations/{organisation.id}/invitations/{invitation_id}"
            )

    def decline() -> Any:
        waiting_for(revoker_read_invitation)()
        # Let the revocation go on once declining waits for the organisation's lock,
        # or holds the invitation's without it.
        with on_sql(
            before=(
                statement("SELECT", "accounts_organisation", locking=True),
                revoker_may_go_on.set,
            ),
            after=(
                statement("SELECT", "accounts_invitation", locking=True),
                revoker_may_go_on.set,
            ),
        ):
            return invitee_api.post(f"/api/v1/organisations/invitations/{invitation_id}/decline")

    revoked, declined = in_threads(revoke, decline)

    assert revoked.status_code == 204
    assert declined.status_code == 409, declined.json()
    assert declined.json()["code"] == "invitation_closed"
    assert Invitation.objects.get(pk=invitation_id).status == Invitation.Status.REVOKED
