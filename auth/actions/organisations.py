"""Organisations (businesses): creation, members, roles, invitations, watching.

Every state change is one function here, in one transaction; the reads that
authorise are in auth/access.py. Who may do what:

- any member sees the organisation and its members; non-members get 404;
- owners and admins invite, remove members and change roles;
- an admin never touches an owner and never makes anyone owner;
- anyone may leave, and set whether they watch the organisation's dossiers;
- the last owner can neither leave nor be demoted nor removed (409 `last_owner`).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth import business_registry
from auth.access import (
    access_member,
    access_my_invitation,
    access_organisation,
    access_organisation_invitation,
    require_manager,
)
from auth.models import Invitation, Membership, Organisation, User
from auth.phone import normalise_phone
from auth.tax_codes import normalise_tax_code
from backend.errors import Conflict, PermissionDenied, ServiceUnavailable, field_error

logger = logging.getLogger(__name__)
Role = Membership.Role


def _owner_required() -> PermissionDenied:
    return PermissionDenied(
        "owner_required", _("Only an owner can change or remove an owner, or make one.")
    )


def _last_owner() -> Conflict:
    return Conflict(
        "last_owner",
        _("The organisation must keep at least one owner. Make someone else owner first."),
    )


def _is_last_owner(target: Membership) -> bool:
    if target.role != Role.OWNER:
        return False
    owners = Membership.objects.filter(organisation_id=target.organisation_id, role=Role.OWNER)
    return owners.exclude(pk=target.pk).count() == 0


# --- Organisations ------------------------------------------------------------------


def create_organisation(user: User, *, tax_code: str, name: str, address: str = "") -> Membership:
    """Create an organisation; its creator becomes its owner (and watches it)."""
    code = normalise_tax_code(tax_code)
    if code is None:
        error = field_error(
            "tax_code",
            "invalid_tax_code",
            _("Enter a valid tax code: 10 digits, or 13 for a branch (0100233583-001)."),
        )
        error.code = "invalid_tax_code"
        raise error
    try:
        with transaction.atomic():
            organisation = Organisation.objects.create(
                tax_code=code, name=name.strip(), address=address.strip()
            )
            membership = Membership.objects.create(
                organisation=organisation, user=user, role=Role.OWNER, watches=True
            )
    except IntegrityError as exc:
        raise Conflict(
            "tax_code_taken", _("An organisation with this tax code already exists.")
        ) from exc
    return membership


def update_organisation(
    user: User, organisation_id: uuid.UUID | str, *, name: str | None, address: str | None
) -> Membership:
    with transaction.atomic():
        membership = access_organisation(user, organisation_id, for_update=True)
        require_manager(membership)
        organisation = membership.organisation
        if name is not None:
            organisation.name = name.strip()
        if address is not None:
            organisation.address = address.strip()
        organisation.save(update_fields=["name", "address"])
    return membership


def set_watching(user: User, organisation_id: uuid.UUID | str, *, watches: bool) -> Membership:
    """Whether `user` receives updates of the organisation's dossiers."""
    with transaction.atomic():
        # The organisation's lock, as every membership change: a manager removing
        # `user` meanwhile makes this a 404, not an update of a deleted row.
        membership = access_organisation(user, organisation_id, for_update=True)
        membership.watches = watches
        membership.save(update_fields=["watches"])
    return membership


# --- Members ------------------------------------------------------------------------


def change_role(
    user: User, organisation_id: uuid.UUID | str, member_id: uuid.UUID | str, *, role: str
) -> Membership:
    with transaction.atomic():
        membership = access_organisation(user, organisation_id, for_update=True)
        require_manager(membership)
        target = access_member(membership, member_id)
        if membership.role != Role.OWNER and (target.role == Role.OWNER or role == Role.OWNER):
            raise _owner_required()
        if target.role == role:
            return target
        if _is_last_owner(target):
            raise _last_owner()
        target.role = role
        target.save(update_fields=["role"])
    return target


def remove_member(user: User, organisation_id: uuid.UUID | str, member_id: uuid.UUID | str) -> None:
    """Remove a member, or leave when `member_id` is the caller."""
    with transaction.atomic():
        membership = access_organisation(user, organisation_id, for_update=True)
        target = access_member(membership, member_id)
        if target.pk != membership.pk:
            require_manager(membership)
            if membership.role != Role.OWNER and target.role == Role.OWNER:
                raise _owner_required()
        if _is_last_owner(target):
            raise _last_owner()
        target.delete()


# --- Invitations --------------------------------------------------------------------


def invite_member(
    user: User, organisation_id: uuid.UUID | str, *, phone: str, role: str = Role.MEMBER
) -> Invitation:
    """Invite the holder of `phone`. Whether the number is registered is not revealed."""
    e164 = normalise_phone(phone)
    now = timezone.now()
    with transaction.atomic():
        membership = access_organisation(user, organisation_id, for_update=True)
        require_manager(membership)
        if role == Role.OWNER and membership.role != Role.OWNER:
            raise _owner_required()
        if Membership.objects.filter(
            organisation_id=membership.organisation_id, user__phone=e164
        ).exists():
            raise Conflict("already_member", _("This person is already a member."))
        pending = Invitation.objects.filter(
            organisation_id=membership.organisation_id, phone=e164, status=Invitation.Status.PENDING
        ).first()
        if pending is not None:
            if not pending.is_expired(now):
                raise Conflict(
                    "invitation_pending", _("This number already has a pending invitation.")
                )
            # A lapsed invitation makes way for the new one.
            pending.status = Invitation.Status.REVOKED
            pending.save(update_fields=["status"])
        return Invitation.objects.create(
            organisation_id=membership.organisation_id,
            phone=e164,
            role=role,
            invited_by=user,
            created_at=now,
            expires_at=now + dt.timedelta(days=settings.ORGANISATION_INVITATION_TTL_DAYS),
        )


def revoke_invitation(
    user: User, organisation_id: uuid.UUID | str, invitation_id: uuid.UUID | str
) -> None:
    with transaction.atomic():
        membership = access_organisation(user, organisation_id, for_update=True)
        invitation = access_organisation_invitation(membership, invitation_id)
        if invitation.role == Role.OWNER and membership.role != Role.OWNER:
            raise _owner_required()
        invitation.status = Invitation.Status.REVOKED
        invitation.responded_at = timezone.now()
        invitation.responded_by = user
        invitation.save(update_fields=["status", "responded_at", "responded_by"])


def accept_invitation(user: User, invitation_id: uuid.UUID | str) -> Membership:
    with transaction.atomic():
        invitation = access_my_invitation(user, invitation_id)  # organisation locked too
        membership = Membership.objects.filter(
            organisation_id=invitation.organisation_id, user=user
        ).first()
        if membership is None:
            membership = Membership.objects.create(
                organisation_id=invitation.organisation_id,
                user=user,
                role=invitation.role,
                watches=True,
            )
        invitation.status = Invitation.Status.ACCEPTED
        invitation.responded_at = timezone.now()
        invitation.responded_by = user
        invitation.save(update_fields=["status", "responded_at", "responded_by"])
    return Membership.objects.select_related("organisation").get(pk=membership.pk)


def decline_invitation(user: User, invitation_id: uuid.UUID | str) -> Invitation:
    with transaction.atomic():
        invitation = access_my_invitation(user, invitation_id)
        invitation.status = Invitation.Status.DECLINED
        invitation.responded_at = timezone.now()
        invitation.responded_by = user
        invitation.save(update_fields=["status", "responded_at", "responded_by"])
    return invitation


# --- Business registry ------------------------------------------------------------------


def _registry_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "business_registry_unavailable",
        _("The business registry cannot be reached. Try again later."),
        headers={"Retry-After": "60"},
    )


def verify_organisation(user: User, organisation_id: uuid.UUID | str) -> Membership:
    """Check the tax code against the business registry (a manager asks).

    The registry's name replaces the typed one, and the legal representative it
    names becomes the owner: the account whose citizen ID was asserted by a
    national identity (a self-declared number proves nothing). Other owners
    become administrators. Without such an account nothing changes (409).
    """
    membership = access_organisation(user, organisation_id)
    require_manager(membership)
    if not business_registry.enabled():
        raise ServiceUnavailable(
            "business_registry_disabled", _("Checking tax codes is not available.")
        )
    try:
        enterprise = business_registry.look_up(membership.organisation.tax_code)
    except business_registry.RegistryError as exc:
        logger.warning("business registry: %s", exc.reason)
        raise _registry_unavailable() from exc
    if enterprise is None or not enterprise.active:
        raise Conflict(
            "tax_code_not_registered",
            _("The business registry has no active enterprise with this tax code."),
        )
    citizen_ids = [person.citizen_id for person in enterprise.representatives]
    representative = (
        User.objects.filter(
            citizen_id__in=citizen_ids, citizen_id_verified_at__isnull=False, is_active=True
        )
        .order_by("citizen_id_verified_at")
        .first()
    )
    if representative is None:
        raise Conflict(
            "representative_not_verified",
            _(
                "The legal representative must first sign in with their national identity "
                "(VNeID), then ask again."
            ),
        )
    now = timezone.now()
    with transaction.atomic():
        membership = access_organisation(user, organisation_id, for_update=True)
        require_manager(membership)
        organisation = membership.organisation
        organisation.name = enterprise.name[:255]
        organisation.registry_name = enterprise.name[:255]
        organisation.verified_at = now
        if enterprise.address and not organisation.address:
            organisation.address = enterprise.address[:500]
        organisation.save(update_fields=["name", "registry_name", "verified_at", "address"])
        Membership.objects.filter(organisation=organisation, role=Role.OWNER).exclude(
            user=representative
        ).update(role=Role.ADMIN)
        Membership.objects.update_or_create(
            organisation=organisation,
            user=representative,
            defaults={"role": Role.OWNER},
            create_defaults={"role": Role.OWNER, "watches": True},
        )
        logger.info(
            "organisation %s verified; owner is its legal representative %s",
            organisation.pk,
            representative.pk,
        )
    return access_organisation(user, organisation_id)
