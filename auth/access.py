"""Reads that authorise: who may see which account row, organisation, session or reset.

Each helper returns the row only to someone allowed to see it; anyone else gets
404 (or 403 where the caller is known to be the wrong kind of user: a member
who is not a manager, staff without the support permission or TOTP). Handlers
and actions call these instead of reading the models themselves.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth.models import (
    CitizenIdConflict,
    DeviceSession,
    Invitation,
    Membership,
    NationalIdentity,
    Organisation,
    OtpChallenge,
    SupportAuditRecord,
    SupportReset,
    User,
)
from auth.sms_codes import invalid_code
from auth.tokens import live_session
from backend.errors import Conflict, NotFound, PermissionDenied

MANAGERS = {Membership.Role.OWNER, Membership.Role.ADMIN}
SUPPORT_PERMISSION = "accounts.support_reset"


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound() from exc


# --- Sessions and codes ---------------------------------------------------------------


def my_sessions(user: User) -> QuerySet[DeviceSession]:
    """The user's live device sessions: not revoked, nor past SESSION_MAX_AGE_DAYS
    (whose tokens no longer work: nothing is signed in there to show or sign out)."""
    return DeviceSession.objects.filter(live_session(), user=user)


def access_session(user: User, session_id: uuid.UUID) -> DeviceSession:
    """One of the user's live sessions; anyone else's reads as not found."""
    session = my_sessions(user).filter(pk=session_id).first()
    if session is None:
        raise NotFound()
    return session


def open_challenge(
    challenge_id: uuid.UUID, purpose: str, *, user: User | None = None
) -> OtpChallenge:
    """The unspent challenge of `purpose`; any other one reads as a wrong code."""
    queryset = OtpChallenge.objects.select_related("user").filter(
        pk=challenge_id, purpose=purpose, consumed_at=None
    )
    if user is not None:
        queryset = queryset.filter(user=user)
    challenge = queryset.first()
    if challenge is None:
        raise invalid_code()
    return challenge


# --- National identity ----------------------------------------------------------------


def my_national_identity(user: User) -> NationalIdentity:
    """The national identity linked to `user`; 404 when there is none."""
    identity = NationalIdentity.objects.filter(user=user).first()
    if identity is None:
        raise NotFound("national_id_not_linked", _("No national identity is linked."))
    return identity


def identity_level(user: User) -> int:
    """The level (VNeID 1 or 2) of the national identity linked to `user`, 0 without one."""
    level = NationalIdentity.objects.filter(user=user).values_list("level", flat=True).first()
    return int(level or 0)


def open_citizen_id_claims(user: User) -> QuerySet[CitizenIdConflict]:
    """The user's open claims to a citizen ID another account holds (asserted by its
    national identity or entered in the app), newest first."""
    return CitizenIdConflict.objects.filter(verified_user=user, resolved_at=None).order_by(
        "-created_at", "-pk"
    )


def entered_citizen_id(user: User) -> str | None:
    """The citizen ID as its citizen entered it: the one the account holds, else the one
    entered in the app and held aside as a conflict (`accounts.set_identity`: the app
    shows it as entered, so that an unverified caller learns nothing about other
    accounts)."""
    if user.citizen_id:
        return user.citizen_id
    return (
        open_citizen_id_claims(user)
        .filter(source=CitizenIdConflict.Source.DECLARED)
        .values_list("citizen_id", flat=True)
        .first()
    )


# --- Organisations --------------------------------------------------------------------


def my_memberships(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organisation")


def access_organisation(
    user: User, organisation_id: uuid.UUID | str, *, for_update: bool = False
) -> Membership:
    """`user`'s membership of the organisation; 404 when they are not a member.

    With `for_update`, the organisation row is locked until the transaction ends,
    which serialises every membership change of one organisation (last-owner rule).
    """
    key = _uuid(organisation_id)
    if for_update and not lock_organisation(key):
        raise NotFound()
    membership = my_memberships(user).filter(organisation_id=key).first()
    if membership is None:
        raise NotFound()
    return membership


def lock_organisation(key: uuid.UUID) -> bool:
    """Lock the organisation row until the transaction ends; False if it does not exist."""
    return bool(list(Organisation.objects.select_for_update().filter(pk=key).values_list("pk")))


def require_manager(membership: Membership) -> None:
    if membership.role not in MANAGERS:
        raise PermissionDenied(
            "not_organisation_manager",
            _("Only owners and administrators of the organisation can do this."),
        )


def access_member(membership: Membership, user_id: uuid.UUID | str) -> Membership:
    """Another membership of the same organisation (404 if there is none)."""
    target = (
        Membership.objects.select_related("user")
        .filter(organisation_id=membership.organisation_id, user_id=_uuid(user_id))
        .first()
    )
    if target is None:
        raise NotFound()
    return target


def organisation_members(membership: Membership) -> QuerySet[Membership]:
    """Members of the organisation `membership` belongs to (any member may list them)."""
    return Membership.objects.filter(organisation_id=membership.organisation_id).select_related(
        "user"
    )


def organisation_invitations(membership: Membership) -> QuerySet[Invitation]:
    """Pending, unexpired invitations of the organisation (for its managers)."""
    require_manager(membership)
    return Invitation.objects.filter(
        organisation_id=membership.organisation_id,
        status=Invitation.Status.PENDING,
        expires_at__gt=timezone.now(),
    )


def access_organisation_invitation(
    membership: Membership, invitation_id: uuid.UUID | str
) -> Invitation:
    """A pending invitation of the organisation, for its managers; 404 otherwise."""
    require_manager(membership)
    invitation = Invitation.objects.filter(
        pk=_uuid(invitation_id),
        organisation_id=membership.organisation_id,
        status=Invitation.Status.PENDING,
    ).first()
    if invitation is None:
        raise NotFound()
    return invitation


def my_invitations(user: User) -> QuerySet[Invitation]:
    """Pending, unexpired invitations to `user`'s verified phone number."""
    if user.phone_verified_at is None:
        return Invitation.objects.none()
    return Invitation.objects.filter(
        phone=user.phone, status=Invitation.Status.PENDING, expires_at__gt=timezone.now()
    ).select_related("organisation", "invited_by")


def access_my_invitation(user: User, invitation_id: uuid.UUID | str) -> Invitation:
    """The invitation addressed to `user`'s verified number, locked, and its
    organisation locked before it; 404 otherwise.

    The organisation first: that is the order of every membership change (a
    manager revoking the invitation locks the organisation, then writes the
    invitation), so accepting while it is revoked waits instead of deadlocking.
    """
    if user.phone_verified_at is None:
        raise NotFound()
    mine = Invitation.objects.filter(pk=_uuid(invitation_id), phone=user.phone)
    # An invitation's organisation never changes: read unlocked, then locked in order.
    organisation_id = mine.values_list("organisation_id", flat=True).first()
    if organisation_id is None or not lock_organisation(organisation_id):
        raise NotFound()
    invitation = mine.select_for_update().first()
    if invitation is None:
        raise NotFound()
    if invitation.status != Invitation.Status.PENDING:
        raise Conflict("invitation_closed", _("This invitation was already answered or revoked."))
    if invitation.is_expired():
        raise Conflict("invitation_expired", _("This invitation has expired."))
    return invitation


# --- Support staff --------------------------------------------------------------------


def is_support_staff(user: User) -> bool:
    return bool(user.is_active and user.is_staff and user.has_perm(SUPPORT_PERMISSION))


def require_support_staff(user: User) -> None:
    """403 unless `user` is support staff with TOTP enabled."""
    if not is_support_staff(user):
        raise PermissionDenied(
            "not_support_staff", _("Only support staff can use the support functions.")
        )
    if not user.has_totp:
        raise PermissionDenied(
            "totp_required",
            _("Turn on an authenticator app (TOTP) for your account to use support functions."),
        )


# Sign-in factors strong enough for support functions (a phishable SMS code or a
# static recovery code is not). National sign-in may add its own here.
STRONG_SIGN_IN_FACTORS = frozenset({"totp"})


def require_support_sign_in(staff: User, *, factor: str, signed_in_at: dt.datetime | None) -> None:
    """403 unless `staff` is support staff signed in with a strong factor, recently.

    The one rule for every way in: the admin's support pages (the factor its login
    form checked, kept in the admin session) and the support API (the factor the
    device session was opened with).
    """
    require_support_staff(staff)
    if factor not in STRONG_SIGN_IN_FACTORS or signed_in_at is None:
        raise PermissionDenied(
            "second_factor_sign_in_required",
            _(
                "This session was opened without your authenticator code. Sign out and "
                "sign in again with the code to use support functions."
            ),
        )
    max_age = dt.timedelta(hours=settings.SUPPORT_SIGN_IN_MAX_AGE_HOURS)
    if timezone.now() - signed_in_at > max_age:
        raise PermissionDenied(
            "support_sign_in_expired",
            _(
                "Your sign-in is too old for support functions. Sign out and sign in "
                "again with your authenticator code."
            ),
        )


def access_support_subject(staff: User, user_id: uuid.UUID | str) -> User:
    """An account support staff may act on; 404 for unknown ids."""
    require_support_staff(staff)
    try:
        key = uuid.UUID(str(user_id))
    except ValueError as exc:
        raise NotFound() from exc
    subject = User.objects.filter(pk=key).first()
    if subject is None:
        raise NotFound()
    return subject


def access_reset(
    staff: User, reset_id: uuid.UUID | str, *, for_update: bool = False
) -> SupportReset:
    require_support_staff(staff)
    try:
        key = uuid.UUID(str(reset_id))
    except ValueError as exc:
        raise NotFound() from exc
    queryset = SupportReset.objects.select_related("user", "opened_by", "approved_by")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    reset = queryset.filter(pk=key).first()
    if reset is None:
        raise NotFound()
    return reset


def support_resets(staff: User, *, status: str | None = None) -> QuerySet[SupportReset]:
    require_support_staff(staff)
    queryset = SupportReset.objects.select_related("user", "opened_by", "approved_by")
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def audit_records(staff: User, *, user_id: uuid.UUID | None = None) -> QuerySet[SupportAuditRecord]:
    """The audit trail, for support staff."""
    require_support_staff(staff)
    records = SupportAuditRecord.objects.select_related("actor", "approver")
    if user_id is not None:
        records = records.filter(subject_id=user_id)
    return records


def my_support_audit(subject: User) -> QuerySet[SupportAuditRecord]:
    """Support actions taken on `subject`'s account (what the citizen may list)."""
    return SupportAuditRecord.objects.filter(subject=subject).select_related("reset")
