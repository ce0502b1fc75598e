"""Support console: account look-up and audited resets.

Every route but `my-audit` is for support staff (permission `accounts.support_reset`)
who have TOTP enabled, in a session opened with their authenticator code within
SUPPORT_SIGN_IN_MAX_AGE_HOURS (`support_session`, the same rule as the admin's
support pages). No response ever carries a secret, a code or a password.

Reading a citizen is an audited look-up, as in the admin (`support.record_look_up`,
channel "api"): a reset opened, of its citizen; the audit trail of one account, of that
account. Lists are none, as the admin's; nor is `my-audit`, one's own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from auth import access
from auth.actions import support
from auth.bearer import SessionBearer, bearer, current_session, current_user
from auth.masked_accounts import masked_account
from auth.models import SupportAuditRecord, SupportReset, User
from auth.phone import mask_phone
from backend.errors import ErrorOut
from backend.idempotency import idempotent
from backend.middleware import client_ip
from backend.pagination import PageParams, page_of, paginate


class SupportSession(SessionBearer):
    """A bearer token of a session that support functions accept (else 403).

    Checked as the route's authentication, so no handler can forget it and an
    idempotent replay (authenticated first) is refused like the route itself.
    """

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = super().authenticate(request, token)
        if user is None:
            return None
        session = current_session(request)
        access.require_support_sign_in(
            user, factor=session.second_factor, signed_in_at=session.second_factor_at
        )
        return user


support_session = SupportSession()
router = Router(auth=support_session, tags=["support"])

ResetKind = Literal["lost_phone", "lost_authenticator", "locked_out", "new_phone_number"]
ResetStatus = Literal["pending", "applied", "rejected", "expired"]


def context(request: HttpRequest) -> support.Context:
    return support.Context(channel="api", ip=client_ip(request))


class LookupIn(Schema):
    phone: str | None = Field(None, max_length=32)
    citizen_id: str | None = Field(None, max_length=12)


class AccountOut(Schema):
    """Masked: enough to recognise the account, nothing to take it over with."""

    id: uuid.UUID
    full_name_masked: str
    phone_masked: str
    citizen_id_masked: str
    citizen_id_conflict: bool = Field(
        description=(
            "The account claims a citizen ID another account holds, entered in the app or "
            "asserted by its national identity (settle in person)"
        )
    )
    verification_level: int
    national_identity_level: int = Field(
        0, description="Level of the linked national identity (VNeID); 0 when none"
    )
    phone_verified: bool
    has_totp: bool
    is_active: bool
    is_staff: bool
    must_reset_password: bool
    active_sessions: int
    pending_reset_id: uuid.UUID | None
    date_joined: dt.datetime


class ResetIn(Schema):
    user_id: uuid.UUID
    kind: ResetKind
    reason: str = Field(..., max_length=2000)
    evidence: str = Field(
        ...,
        max_length=2000,
        description='How identity was proven, e.g. "CCCD checked in person at the counter"',
    )
    ticket_number: str = Field(..., max_length=64)
    new_phone: str | None = Field(None, max_length=32, description="Vietnamese mobile number")


class RejectIn(Schema):
    note: str = Field(..., max_length=2000)


class StaffOut(Schema):
    id: uuid.UUID
    full_name: str


class ResetOut(Schema):
    id: uuid.UUID
    account: AccountOut
    kind: ResetKind
    reason: str
    evidence: str
    ticket_number: str
    new_phone_masked: str
    status: ResetStatus
    requires_approval: bool
    opened_by: StaffOut
    opened_at: dt.datetime
    approved_by: StaffOut | None
    decided_at: dt.datetime | None
    decision_note: str
    applied_at: dt.datetime | None


class ResetFilter(PageParams):
    status: ResetStatus | None = None


class AuditFilter(PageParams):
    user_id: uuid.UUID | None = None


class AuditRecordOut(Schema):
    id: int
    action: str
    actor: StaffOut
    subject_id: uuid.UUID | None
    reset_id: uuid.UUID | None
    evidence: str
    approver: StaffOut | None
    channel: str
    created_at: dt.datetime
    details: dict[str, Any]


class MyAuditOut(Schema):
    """A support action on your own account, as the citizen sees it."""

    id: int
    action: str
    description: str
    reset_kind: ResetKind | None
    created_at: dt.datetime


def staff_out(user: Any) -> dict[str, Any] | None:
    return {"id": user.id, "full_name": user.full_name} if user is not None else None


def reset_out(reset: SupportReset) -> dict[str, Any]:
    return {
        "id": reset.id,
        "account": masked_account(reset.user),
        "kind": reset.kind,
        "reason": reset.reason,
        "evidence": reset.evidence,
        "ticket_number": reset.ticket_number,
        "new_phone_masked": mask_phone(reset.new_phone) if reset.new_phone else "",
        "status": reset.status,
        "requires_approval": reset.requires_approval,
        "opened_by": staff_out(reset.opened_by),
        "opened_at": reset.opened_at,
        "approved_by": staff_out(reset.approved_by),
        "decided_at": reset.decided_at,
        "decision_note": reset.decision_note,
        "applied_at": reset.applied_at,
    }


def audit_out(record: SupportAuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "action": record.action,
        "actor": staff_out(record.actor),
        "subject_id": record.subject_id,
        "reset_id": record.reset_id,
        "evidence": record.evidence,
        "approver": staff_out(record.approver),
        "channel": record.channel,
        "created_at": record.created_at,
        "details": record.details,
    }


# --- For citizens -------------------------------------------------------------------------


@router.get(
    "/my-audit",
    auth=bearer,
    response={200: page_of(MyAuditOut)},
    summary="Support actions taken on my account",
)
def my_audit(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    rows, next_cursor = paginate(access.my_support_audit(current_user(request)), params)
    return {
        "items": [
            {
                "id": record.id,
                "action": record.action,
                "description": str(record.get_action_display()),
                "reset_kind": record.reset.kind if record.reset else None,
                "created_at": record.created_at,
            }
            for record in rows
        ],
        "next_cursor": next_cursor,
    }


# --- For support staff ----------------------------------------------------------------------


@router.post(
    "/lookup",
    response={200: AccountOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Look up an account by phone number or citizen ID (audited)",
)
def look_up(request: HttpRequest, payload: LookupIn) -> dict[str, Any]:
    subject = support.look_up_account(
        current_user(request),
        phone=payload.phone,
        citizen_id=payload.citizen_id,
        context=context(request),
    )
    return masked_account(subject)


@router.get(
    "/resets",
    response={200: page_of(ResetOut), 403: ErrorOut},
    summary="Resets, newest first (filter by status, e.g. pending approvals)",
)
def list_resets(request: HttpRequest, params: Query[ResetFilter]) -> dict[str, Any]:
    # A list is no look-up, as the admin's list of resets is none: one record per reset
    # shown, each time an approver reloads the pending list, would drown the trail in
    # records of no one's search; each reset opened is one (`get_reset`).
    resets = access.support_resets(current_user(request), status=params.status)
    rows, next_cursor = paginate(resets, params, ("-opened_at", "-id"))
    return {"items": [reset_out(r) for r in rows], "next_cursor": next_cursor}


@router.post(
    "/resets",
    response={201: ResetOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Open a reset (applied at once below level 2, else waits for a second approver)",
)
@idempotent
def open_reset(request: HttpRequest, payload: ResetIn) -> Status[dict[str, Any]]:
    staff = current_user(request)
    subject = access.access_support_subject(staff, payload.user_id)
    reset = support.open_reset(
        staff,
        subject,
        kind=payload.kind,
        reason=payload.reason,
        evidence=payload.evidence,
        ticket_number=payload.ticket_number,
        new_phone=payload.new_phone,
        context=context(request),
    )
    return Status(201, reset_out(access.access_reset(staff, reset.id)))


@router.get(
    "/resets/{reset_id}",
    response={200: ResetOut, 403: ErrorOut, 404: ErrorOut},
    summary="A reset (an audited look-up of its citizen)",
)
def get_reset(request: HttpRequest, reset_id: uuid.UUID) -> dict[str, Any]:
    staff = current_user(request)
    reset = access.access_reset(staff, reset_id)
    # A reset shows its citizen: opening one is a look-up of them, as in the admin.
    support.record_account_view(staff, reset.user, context=context(request), by="support_reset")
    return reset_out(reset)


@router.post(
    "/resets/{reset_id}/approve",
    response={200: ResetOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Approve a pending reset (a second staff member); applies it",
)
def approve_reset(request: HttpRequest, reset_id: uuid.UUID) -> dict[str, Any]:
    staff = current_user(request)
    reset = support.approve_reset(staff, reset_id, context=context(request))
    return reset_out(access.access_reset(staff, reset.id))


@router.post(
    "/resets/{reset_id}/reject",
    response={200: ResetOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Reject a pending reset (a second staff member)",
)
def reject_reset(request: HttpRequest, reset_id: uuid.UUID, payload: RejectIn) -> dict[str, Any]:
    staff = current_user(request)
    reset = support.reject_reset(staff, reset_id, note=payload.note, context=context(request))
    return reset_out(access.access_reset(staff, reset.id))


@router.get(
    "/audit",
    response={200: page_of(AuditRecordOut), 403: ErrorOut},
    summary="The support audit trail (optionally of one account: an audited look-up of it)",
)
def list_audit(request: HttpRequest, params: Query[AuditFilter]) -> dict[str, Any]:
    staff = current_user(request)
    records = access.audit_records(staff, user_id=params.user_id)
    rows, next_cursor = paginate(records, params)
    if params.user_id is not None:
        support.record_audit_trail_read(staff, params.user_id, context=context(request))
    return {"items": [audit_out(r) for r in rows], "next_cursor": next_cursor}
