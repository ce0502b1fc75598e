"""Organisations (businesses), members and invitations.

Every route is for signed-in users; an organisation you are not a member of
answers 404, whatever the route.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import StrictBool

from auth import access
from auth.actions import organisations
from auth.bearer import bearer, current_user
from auth.models import Invitation, Membership
from auth.phone import mask_phone
from auth.tax_codes import format_tax_code
from backend.errors import ErrorOut
from backend.idempotency import idempotent
from backend.pagination import PageParams, page_of, paginate

router = Router(auth=bearer, tags=["organisations"])

RoleName = Literal["owner", "admin", "member"]


class OrganisationIn(Schema):
    tax_code: str = Field(
        ..., max_length=32, description="MST: 10 digits, or 13 for a branch (0100233583-001)"
    )
    name: str = Field(..., min_length=2, max_length=255)
    address: str = Field("", max_length=500)


class OrganisationPatch(Schema):
    name: str | None = Field(None, min_length=2, max_length=255)
    address: str | None = Field(None, max_length=500)


class OrganisationOut(Schema):
    id: uuid.UUID
    tax_code: str = Field(..., description="Digits only (10 or 13)")
    tax_code_display: str = Field(..., description="0100233583 or 0100233583-001")
    name: str
    address: str
    created_at: dt.datetime
    verified: bool = Field(
        ..., description="False until the business registry confirmed the tax code"
    )
    verified_at: dt.datetime | None
    my_role: RoleName
    watching: bool = Field(..., description="Whether you receive its dossiers' updates")


class WatchingIn(Schema):
    watching: StrictBool


class MemberOut(Schema):
    user_id: uuid.UUID
    full_name: str
    phone_masked: str
    role: RoleName
    watching: bool
    joined_at: dt.datetime


class RoleIn(Schema):
    role: RoleName


class InvitationIn(Schema):
    phone: str = Field(..., max_length=32, description="Vietnamese mobile number")
    role: RoleName = "member"


class InvitationOut(Schema):
    """An invitation as the organisation's managers see it."""

    id: uuid.UUID
    phone: str
    role: RoleName
    status: Literal["pending", "accepted", "declined", "revoked"]
    invited_by: uuid.UUID | None
    created_at: dt.datetime
    expires_at: dt.datetime


class InvitingOrganisationOut(Schema):
    id: uuid.UUID
    name: str
    tax_code_display: str
    verified: bool = Field(
        ..., description="False until the business registry confirmed the tax code"
    )


class MyInvitationOut(Schema):
    """An invitation as its invitee sees it."""

    id: uuid.UUID
    organisation: InvitingOrganisationOut
    role: RoleName
    invited_by_name: str
    status: Literal["pending", "accepted", "declined", "revoked"]
    created_at: dt.datetime
    expires_at: dt.datetime


def organisation_out(membership: Membership) -> dict[str, Any]:
    organisation = membership.organisation
    return {
        "id": organisation.id,
        "tax_code": organisation.tax_code,
        "tax_code_display": format_tax_code(organisation.tax_code),
        "name": organisation.name,
        "address": organisation.address,
        "created_at": organisation.created_at,
        "verified": organisation.verified_at is not None,
        "verified_at": organisation.verified_at,
        "my_role": membership.role,
        "watching": membership.watches,
    }


def member_out(membership: Membership) -> dict[str, Any]:
    return {
        "user_id": membership.user_id,
        "full_name": membership.user.full_name,
        "phone_masked": mask_phone(membership.user.phone),
        "role": membership.role,
        "watching": membership.watches,
        "joined_at": membership.created_at,
    }


def invitation_out(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "phone": invitation.phone,
        "role": invitation.role,
        "status": invitation.status,
        "invited_by": invitation.invited_by_id,
        "created_at": invitation.created_at,
        "expires_at": invitation.expires_at,
    }


def my_invitation_out(invitation: Invitation) -> dict[str, Any]:
    organisation = invitation.organisation
    return {
        "id": invitation.id,
        "organisation": {
            "id": organisation.id,
            "name": organisation.name,
            "tax_code_display": format_tax_code(organisation.tax_code),
            "verified": organisation.verified_at is not None,
        },
        "role": invitation.role,
        "invited_by_name": invitation.invited_by.full_name if invitation.invited_by else "",
        "status": invitation.status,
        "created_at": invitation.created_at,
        "expires_at": invitation.expires_at,
    }


# --- Mine (static paths first, before /{organisation_id}) -------------------------------


@router.get("", response={200: page_of(OrganisationOut)}, summary="My organisations")
def list_organisations(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    rows, next_cursor = paginate(access.my_memberships(current_user(request)), params)
    return {"items": [organisation_out(m) for m in rows], "next_cursor": next_cursor}


@router.post(
    "",
    response={201: OrganisationOut, 409: ErrorOut, 422: ErrorOut},
    summary="Create an organisation (you become its owner)",
)
@idempotent
def create_organisation(request: HttpRequest, payload: OrganisationIn) -> Status[dict[str, Any]]:
    membership = organisations.create_organisation(
        current_user(request),
        tax_code=payload.tax_code,
        name=payload.name,
        address=payload.address,
    )
    return Status(201, organisation_out(membership))


@router.get(
    "/invitations",
    response={200: page_of(MyInvitationOut)},
    summary="Invitations waiting for my answer",
)
def list_my_invitations(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    rows, next_cursor = paginate(access.my_invitations(current_user(request)), params)
    return {"items": [my_invitation_out(i) for i in rows], "next_cursor": next_cursor}


@router.post(
    "/invitations/{invitation_id}/accept",
    response={200: OrganisationOut, 404: ErrorOut, 409: ErrorOut},
    summary="Accept an invitation (you become a member)",
)
def accept_invitation(request: HttpRequest, invitation_id: uuid.UUID) -> dict[str, Any]:
    return organisation_out(organisations.accept_invitation(current_user(request), invitation_id))


@router.post(
    "/invitations/{invitation_id}/decline",
    response={200: MyInvitationOut, 404: ErrorOut, 409: ErrorOut},
    summary="Decline an invitation",
)
def decline_invitation(request: HttpRequest, invitation_id: uuid.UUID) -> dict[str, Any]:
    return my_invitation_out(organisations.decline_invitation(current_user(request), invitation_id))


# --- One organisation -------------------------------------------------------------------


@router.get(
    "/{organisation_id}",
    response={200: OrganisationOut, 404: ErrorOut},
    summary="Get an organisation I belong to",
)
def get_organisation(request: HttpRequest, organisation_id: uuid.UUID) -> dict[str, Any]:
    return organisation_out(access.access_organisation(current_user(request), organisation_id))


@router.post(
    "/{organisation_id}/verify",
    response={200: OrganisationOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    summary="Verify the tax code with the business registry (owners and admins)",
)
def verify_organisation(request: HttpRequest, organisation_id: uuid.UUID) -> dict[str, Any]:
    """The registry's name replaces the typed one; its legal representative (signed in
    with VNeID) becomes the owner."""
    return organisation_out(
        organisations.verify_organisation(current_user(request), organisation_id)
    )


@router.patch(
    "/{organisation_id}",
    response={200: OrganisationOut, 403: ErrorOut, 404: ErrorOut},
    summary="Rename or change the address (owners and admins)",
)
def update_organisation(
    request: HttpRequest, organisation_id: uuid.UUID, payload: OrganisationPatch
) -> dict[str, Any]:
    membership = organisations.update_organisation(
        current_user(request), organisation_id, name=payload.name, address=payload.address
    )
    return organisation_out(membership)


@router.put(
    "/{organisation_id}/watching",
    response={200: OrganisationOut, 404: ErrorOut},
    summary="Choose whether you receive updates of the organisation's dossiers",
)
def set_watching(
    request: HttpRequest, organisation_id: uuid.UUID, payload: WatchingIn
) -> dict[str, Any]:
    membership = organisations.set_watching(
        current_user(request), organisation_id, watches=payload.watching
    )
    return organisation_out(membership)


@router.get(
    "/{organisation_id}/members",
    response={200: page_of(MemberOut), 404: ErrorOut},
    summary="List an organisation's members",
)
def list_members(
    request: HttpRequest, organisation_id: uuid.UUID, params: Query[PageParams]
) -> dict[str, Any]:
    membership = access.access_organisation(current_user(request), organisation_id)
    members = access.organisation_members(membership)
    rows, next_cursor = paginate(members, params, ("created_at", "id"))
    return {"items": [member_out(m) for m in rows], "next_cursor": next_cursor}


@router.patch(
    "/{organisation_id}/members/{user_id}",
    response={200: MemberOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Change a member's role (owners and admins)",
)
def change_role(
    request: HttpRequest, organisation_id: uuid.UUID, user_id: uuid.UUID, payload: RoleIn
) -> dict[str, Any]:
    target = organisations.change_role(
        current_user(request), organisation_id, user_id, role=payload.role
    )
    return member_out(target)


@router.delete(
    "/{organisation_id}/members/{user_id}",
    response={204: None, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Remove a member, or leave (your own user id)",
)
def remove_member(
    request: HttpRequest, organisation_id: uuid.UUID, user_id: uuid.UUID
) -> Status[None]:
    organisations.remove_member(current_user(request), organisation_id, user_id)
    return Status(204, None)


@router.get(
    "/{organisation_id}/invitations",
    response={200: page_of(InvitationOut), 403: ErrorOut, 404: ErrorOut},
    summary="Pending invitations (owners and admins)",
)
def list_invitations(
    request: HttpRequest, organisation_id: uuid.UUID, params: Query[PageParams]
) -> dict[str, Any]:
    membership = access.access_organisation(current_user(request), organisation_id)
    rows, next_cursor = paginate(access.organisation_invitations(membership), params)
    return {"items": [invitation_out(i) for i in rows], "next_cursor": next_cursor}


@router.post(
    "/{organisation_id}/invitations",
    response={201: InvitationOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Invite someone by phone number (owners and admins)",
)
@idempotent
def invite_member(
    request: HttpRequest, organisation_id: uuid.UUID, payload: InvitationIn
) -> Status[dict[str, Any]]:
    invitation = organisations.invite_member(
        current_user(request), organisation_id, phone=payload.phone, role=payload.role
    )
    return Status(201, invitation_out(invitation))


@router.delete(
    "/{organisation_id}/invitations/{invitation_id}",
    response={204: None, 403: ErrorOut, 404: ErrorOut},
    summary="Revoke a pending invitation (owners and admins)",
)
def revoke_invitation(
    request: HttpRequest, organisation_id: uuid.UUID, invitation_id: uuid.UUID
) -> Status[None]:
    organisations.revoke_invitation(current_user(request), organisation_id, invitation_id)
    return Status(204, None)
