"""Organisations: members, roles, invitations, watching; non-members see nothing."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from auth.models import Invitation, Membership, Organisation, User
from tests.accounts.staff import client_for
from tests.conftest import make_user
from tests.factories import make_organisation

pytestmark = pytest.mark.django_db

Role = Membership.Role


def add_member(organisation: Organisation, role: str = Role.MEMBER, **extra: object) -> User:
    user = make_user(**extra)  # type: ignore[arg-type]
    Membership.objects.create(organisation=organisation, user=user, role=role)
    return user


def role_of(organisation: Organisation, user: User) -> str | None:
    membership = Membership.objects.filter(organisation=organisation, user=user).first()
    return membership.role if membership else None


def url(organisation: Organisation, suffix: str = "") -> str:
    return f"/api/v1/organisations/{organisation.id}{suffix}"


@pytest.fixture
def owner() -> User:
    return make_user(full_name="Nguyễn Chủ Sở Hữu")


@pytest.fixture
def org(owner: User) -> Organisation:
    return make_organisation(owner)


# --- Reading ---------------------------------------------------------------------------


def test_my_organisations_lists_only_mine_with_my_role(owner: User, org: Organisation) -> None:
    make_organisation(make_user())
    other = make_organisation(make_user())
    Membership.objects.create(organisation=other, user=owner, role=Role.MEMBER, watches=False)
    response = client_for(owner).get("/api/v1/organisations")
    assert response.status_code == 200
    items = response.json()["items"]
    assert {(i["id"], i["my_role"], i["watching"]) for i in items} == {
        (str(org.id), "owner", True),
        (str(other.id), "member", False),
    }


def test_members_are_paginated_by_cursor_with_masked_phones(org: Organisation) -> None:
    first = add_member(org, phone="+84987000001")
    add_member(org, phone="+84987000002")
    client = client_for(first)
    page = client.get(url(org, "/members"), query={"limit": 2})
    assert page.status_code == 200
    body = page.json()
    assert [m["role"] for m in body["items"]] == ["owner", "member"]
    assert body["items"][1]["phone_masked"] == "+8498•••0001"
    assert body["next_cursor"] is not None
    rest = client.get(url(org, "/members"), query={"limit": 2, "cursor": body["next_cursor"]})
    assert [m["phone_masked"] for m in rest.json()["items"]] == ["+8498•••0002"]
    assert rest.json()["next_cursor"] is None


NON_MEMBER_ROUTES = [
    ("get", "", None),
    ("patch", "", {"name": "Đổi tên"}),
    ("put", "/watching", {"watching": False}),
    ("get", "/members", None),
    ("patch", "/members/{owner}", {"role": "member"}),
    ("delete", "/members/{owner}", None),
    ("get", "/invitations", None),
    ("post", "/invitations", {"phone": "0987654321"}),
    ("delete", "/invitations/{invitation}", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), NON_MEMBER_ROUTES)
def test_non_members_get_404_on_every_organisation_route(
    owner: User, org: Organisation, method: str, suffix: str, body: dict[str, object] | None
) -> None:
    invitation = Invitation.objects.create(
        organisation=org,
        phone="+84987111222",
        invited_by=owner,
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    path = url(org, suffix.format(owner=owner.id, invitation=invitation.id))
    client = client_for(make_user())
    response = (
        getattr(client, method)(path, body) if body is not None else getattr(client, method)(path)
    )
    assert response.status_code == 404, response
    assert response.json()["code"] == "not_found"
    org.refresh_from_db()
    assert org.name != "Đổi tên"
    assert role_of(org, owner) == "owner"
    assert Invitation.objects.get().status == "pending"
    assert Invitation.objects.count() == 1


def test_unknown_organisation_is_404_like_a_foreign_one(owner: User) -> None:
    response = client_for(owner).get(f"/api/v1/organisations/{uuid.uuid4()}")
    assert response.status_code == 404


def test_members_may_stop_and_resume_watching(org: Organisation) -> None:
    member = add_member(org)
    client = client_for(member)
    response = client.put(url(org, "/watching"), {"watching": False})
    assert response.status_code == 200
    assert response.json()["watching"] is False
    assert Membership.objects.get(organisation=org, user=member).watches is False
    client.put(url(org, "/watching"), {"watching": True})
    assert Membership.objects.get(organisation=org, user=member).watches is True


def test_only_managers_rename_the_organisation(org: Organisation) -> None:
    member = add_member(org)
    refused = client_for(member).patch(url(org), {"name": "Tên mới"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_organisation_manager"
    admin = add_member(org, Role.ADMIN)
    done = client_for(admin).patch(url(org), {"name": "Tên mới"})
    assert done.status_code == 200
    org.refresh_from_db()
    assert org.name == "Tên mới"


# --- Invitations -----------------------------------------------------------------------


def test_owner_invites_by_phone_normalised_to_e164(owner: User, org: Organisation) -> None:
    response = client_for(owner).post(
        url(org, "/invitations"), {"phone": "0987 654 321", "role": "admin"}
    )
    assert response.status_code == 201, response
    body = response.json()
    assert body["phone"] == "+84987654321"
    assert body["role"] == "admin"
    assert body["status"] == "pending"
    invitation = Invitation.objects.get()
    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=7)


def test_invitation_lifetime_follows_the_setting(owner: User, org: Organisation, settings) -> None:
    settings.ORGANISATION_INVITATION_TTL_DAYS = 2
    client_for(owner).post(url(org, "/invitations"), {"phone": "0987654321"})
    invitation = Invitation.objects.get()
    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=2)


@pytest.mark.parametrize("phone", ["12345", "02438251234", "+14155552671", "098765432a"])
def test_inviting_an_invalid_phone_is_422_invalid_phone(
    owner: User, org: Organisation, phone: str
) -> None:
    response = client_for(owner).post(url(org, "/invitations"), {"phone": phone})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["details"][0]["field"] == "phone"
    assert response.json()["details"][0]["code"] == "invalid_phone"
    assert Invitation.objects.count() == 0


def test_members_cannot_invite(org: Organisation) -> None:
    member = add_member(org)
    response = client_for(member).post(url(org, "/invitations"), {"phone": "0987654321"})
    assert response.status_code == 403
    assert response.json()["code"] == "not_organisation_manager"
    assert Invitation.objects.count() == 0


def test_admins_invite_members_and_admins_but_not_owners(org: Organisation) -> None:
    admin = add_member(org, Role.ADMIN)
    client = client_for(admin)
    assert client.post(url(org, "/invitations"), {"phone": "0987000111"}).status_code == 201
    assert (
        client.post(url(org, "/invitations"), {"phone": "0987000222", "role": "admin"}).status_code
        == 201
    )
    refused = client.post(url(org, "/invitations"), {"phone": "0987000333", "role": "owner"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "owner_required"
    assert sorted(Invitation.objects.values_list("phone", flat=True)) == [
        "+84987000111",
        "+84987000222",
    ]


def test_inviting_a_member_or_a_pending_number_again_conflicts(
    owner: User, org: Organisation
) -> None:
    member = add_member(org, phone="+84987000444")
    client = client_for(owner)
    already = client.post(url(org, "/invitations"), {"phone": member.phone})
    assert already.status_code == 409
    assert already.json()["code"] == "already_member"
    assert client.post(url(org, "/invitations"), {"phone": "0987000555"}).status_code == 201
    twice = client.post(url(org, "/invitations"), {"phone": "+84987000555"})
    assert twice.status_code == 409
    assert twice.json()["code"] == "invitation_pending"
    assert Invitation.objects.count() == 1


def test_a_lapsed_invitation_makes_way_for_a_new_one(owner: User, org: Organisation) -> None:
    old = Invitation.objects.create(
        organisation=org, phone="+84987000555", invited_by=owner, expires_at=timezone.now()
    )
    response = client_for(owner).post(url(org, "/invitations"), {"phone": "0987000555"})
    assert response.status_code == 201
    old.refresh_from_db()
    assert old.status == "revoked"


def invite(org: Organisation, inviter: User, phone: str, **extra: object) -> Invitation:
    return Invitation.objects.create(
        organisation=org,
        phone=phone,
        invited_by=inviter,
        expires_at=extra.pop("expires_at", timezone.now() + dt.timedelta(days=7)),  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def test_the_invitee_sees_and_accepts_the_invitation(owner: User, org: Organisation) -> None:
    invitee = make_user(phone="+84987123456")
    invitation = invite(org, owner, invitee.phone, role=Role.ADMIN)
    client = client_for(invitee)
    listed = client.get("/api/v1/organisations/invitations").json()["items"]
    assert [(i["id"], i["role"], i["invited_by_name"]) for i in listed] == [
        (str(invitation.id), "admin", "Nguyễn Chủ Sở Hữu")
    ]
    assert listed[0]["organisation"]["name"] == org.name
    accepted = client.post(f"/api/v1/organisations/invitations/{invitation.id}/accept")
    assert accepted.status_code == 200
    assert accepted.json()["my_role"] == "admin"
    assert role_of(org, invitee) == "admin"
    invitation.refresh_from_db()
    assert (invitation.status, invitation.responded_by_id) == ("accepted", invitee.id)
    again = client.post(f"/api/v1/organisations/invitations/{invitation.id}/accept")
    assert again.status_code == 409
    assert again.json()["code"] == "invitation_closed"
    assert client.get("/api/v1/organisations/invitations").json()["items"] == []


def test_the_invitee_may_decline(owner: User, org: Organisation) -> None:
    invitee = make_user(phone="+84987123456")
    invitation = invite(org, owner, invitee.phone)
    response = client_for(invitee).post(
        f"/api/v1/organisations/invitations/{invitation.id}/decline"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "declined"
    assert role_of(org, invitee) is None


def test_nobody_else_sees_or_answers_an_invitation(owner: User, org: Organisation) -> None:
    invitation = invite(org, owner, "+84987123456")
    stranger = make_user(phone="+84987654000")
    client = client_for(stranger)
    assert client.get("/api/v1/organisations/invitations").json()["items"] == []
    response = client.post(f"/api/v1/organisations/invitations/{invitation.id}/accept")
    assert response.status_code == 404
    assert role_of(org, stranger) is None


def test_an_unverified_number_cannot_accept(owner: User, org: Organisation) -> None:
    invitee = make_user(phone="+84987123456", level=User.Level.UNVERIFIED)
    invitation = invite(org, owner, invitee.phone)
    client = client_for(invitee)
    assert client.get("/api/v1/organisations/invitations").json()["items"] == []
    response = client.post(f"/api/v1/organisations/invitations/{invitation.id}/accept")
    assert response.status_code == 404
    assert role_of(org, invitee) is None


def test_an_invitation_is_accepted_until_it_expires(owner: User, org: Organisation) -> None:
    invitee = make_user(phone="+84987123456")
    just_valid = invite(
        org, owner, invitee.phone, expires_at=timezone.now() + dt.timedelta(minutes=1)
    )
    response = client_for(invitee).post(f"/api/v1/organisations/invitations/{just_valid.id}/accept")
    assert response.status_code == 200
    assert role_of(org, invitee) == "member"


def test_an_expired_invitation_is_hidden_and_refused(owner: User, org: Organisation) -> None:
    invitee = make_user(phone="+84987123456")
    expired = invite(org, owner, invitee.phone, expires_at=timezone.now() - dt.timedelta(seconds=1))
    client = client_for(invitee)
    assert client.get("/api/v1/organisations/invitations").json()["items"] == []
    response = client.post(f"/api/v1/organisations/invitations/{expired.id}/accept")
    assert response.status_code == 409
    assert response.json()["code"] == "invitation_expired"
    assert role_of(org, invitee) is None


def test_managers_list_and_revoke_pending_invitations(owner: User, org: Organisation) -> None:
    invitee = make_user(phone="+84987123456")
    invitation = invite(org, owner, invitee.phone)
    client = client_for(owner)
    listed = client.get(url(org, "/invitations")).json()["items"]
    assert [i["phone"] for i in listed] == ["+84987123456"]
    member = add_member(org)
    refused = client_for(member).delete(url(org, f"/invitations/{invitation.id}"))
    assert refused.status_code == 403
    assert client_for(member).get(url(org, "/invitations")).status_code == 403
    assert client.delete(url(org, f"/invitations/{invitation.id}")).status_code == 204
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    late = client_for(invitee).post(f"/api/v1/organisations/invitations/{invitation.id}/accept")
    assert late.status_code == 409
    assert late.json()["code"] == "invitation_closed"
    assert role_of(org, invitee) is None


# --- Roles -----------------------------------------------------------------------------


def change(actor: User, org: Organisation, target: User, role: str) -> tuple[int, str | None]:
    response = client_for(actor).patch(url(org, f"/members/{target.id}"), {"role": role})
    return response.status_code, (response.json().get("code") if response.content else None)


def remove(actor: User, org: Organisation, target: User) -> tuple[int, str | None]:
    response = client_for(actor).delete(url(org, f"/members/{target.id}"))
    return response.status_code, (response.json().get("code") if response.content else None)


def test_owner_changes_any_role_including_making_owners(owner: User, org: Organisation) -> None:
    member = add_member(org)
    assert change(owner, org, member, "admin") == (200, None)
    assert role_of(org, member) == "admin"
    assert change(owner, org, member, "owner") == (200, None)
    assert role_of(org, member) == "owner"
    assert change(owner, org, member, "member") == (200, None)
    assert role_of(org, member) == "member"


def test_admin_manages_members_and_admins(org: Organisation) -> None:
    admin = add_member(org, Role.ADMIN)
    member = add_member(org)
    other_admin = add_member(org, Role.ADMIN)
    assert change(admin, org, member, "admin") == (200, None)
    assert change(admin, org, other_admin, "member") == (200, None)
    assert (role_of(org, member), role_of(org, other_admin)) == ("admin", "member")
    assert remove(admin, org, other_admin) == (204, None)
    assert role_of(org, other_admin) is None


def test_admin_cannot_make_an_owner(org: Organisation) -> None:
    admin = add_member(org, Role.ADMIN)
    member = add_member(org)
    assert change(admin, org, member, "owner") == (403, "owner_required")
    assert change(admin, org, admin, "owner") == (403, "owner_required")
    assert (role_of(org, member), role_of(org, admin)) == ("member", "admin")


def test_admin_cannot_demote_or_remove_an_owner(owner: User, org: Organisation) -> None:
    admin = add_member(org, Role.ADMIN)
    assert change(admin, org, owner, "member") == (403, "owner_required")
    assert remove(admin, org, owner) == (403, "owner_required")
    assert role_of(org, owner) == "owner"


def test_members_cannot_change_roles_or_remove_others(owner: User, org: Organisation) -> None:
    member = add_member(org)
    other = add_member(org)
    assert change(member, org, other, "admin") == (403, "not_organisation_manager")
    assert change(member, org, member, "admin") == (403, "not_organisation_manager")
    assert remove(member, org, other) == (403, "not_organisation_manager")
    assert (role_of(org, member), role_of(org, other)) == ("member", "member")


def test_a_member_may_leave(org: Organisation) -> None:
    member = add_member(org)
    assert remove(member, org, member) == (204, None)
    assert role_of(org, member) is None


def test_the_last_owner_cannot_leave_or_be_demoted(owner: User, org: Organisation) -> None:
    assert remove(owner, org, owner) == (409, "last_owner")
    assert change(owner, org, owner, "admin") == (409, "last_owner")
    assert role_of(org, owner) == "owner"


def test_with_a_second_owner_an_owner_may_leave(owner: User, org: Organisation) -> None:
    second = add_member(org, Role.OWNER)
    assert remove(owner, org, owner) == (204, None)
    assert remove(second, org, second) == (409, "last_owner")
    assert list(Membership.objects.filter(organisation=org).values_list("user_id", "role")) == [
        (second.id, "owner")
    ]


def test_removing_someone_not_in_the_organisation_is_404(owner: User, org: Organisation) -> None:
    outsider = make_user()
    make_organisation(outsider)
    assert remove(owner, org, outsider)[0] == 404


def test_watching_decides_who_hears_about_the_organisations_dossiers(
    owner: User, org: Organisation
) -> None:
    from dossiers.audience import recipients_for
    from tests.factories import make_dossier

    member = add_member(org)
    dossier = make_dossier(owner, organisation=org)
    assert recipients_for(dossier) == {owner.id, member.id}
    client_for(member).put(url(org, "/watching"), {"watching": False})
    assert recipients_for(dossier) == {owner.id}
