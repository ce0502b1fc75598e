"""Support staff: account look-up and audited resets of sign-in factors.

Rules (each enforced here, for the API and the admin alike):
- only active staff with the `accounts.support_reset` permission, and only once
  they have TOTP enabled themselves (403 `totp_required`);
- a reset needs a reason, proofing evidence and a ticket number;
- level-2 (identity verified) accounts need a second staff member's approval
  before anything changes; nobody approves their own reset (`self_approval`) or
  resets their own account (`self_reset`); staff accounts are never reset here;
- applying removes TOTP, invalidates recovery codes, revokes every session and
  every sign-in in progress (a code texted before cannot finish it), sets
  the new number, and makes the citizen choose a new password through the OTP
  reset flow. The new number counts as verified by the reset's own proofing
  (identity checked by staff, the number given by the citizen), so that flow
  serves it, and its OTP to the new number proves possession at the first
  sign-in; a pending sign-up that never verified the number is removed (it does
  not own it); the citizen is told by SMS on the old and
  new numbers, and by push (settings.ACCOUNT_NOTICE_SUBSCRIBERS, e.g. notifications)
  on the devices of the sessions the reset revoked. Staff never see or choose a
  secret, code or password;
- every action appends an audit record (`record_support_action`), append-only.

Who may act (`require_support_staff`, `access_reset`, ...) is in auth/access.py,
what staff see of an account in auth/masked_accounts.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from auth.access import access_reset, identity_level, require_support_staff
from auth.actions.notices import notify_owner
from auth.actions.phone_numbers import free_phone_number, lock_phone_number
from auth.actions.sessions import end_sign_ins
from auth.models import DeviceSession, RecoveryCode, SupportAuditRecord, SupportReset, User
from auth.personal_numbers import CITIZEN_ID
from auth.phone import invalid_phone, mask_phone, parse_phone
from auth.sms import SmsTemplate
from backend.errors import Conflict, NotFound, PermissionDenied, Unprocessable, field_detail
from backend.jobs import defer

Action = SupportAuditRecord.Action

# auth/tasks.py imports the actions it runs: the job is named, not imported (no cycle).
# The SMS a reset sends, in the account's language.
NOTICE_RESET_MOVED = SmsTemplate(
    _(
        "Support staff reset your Public Services account and moved it to the number ending "
        "{last4}. If you did not ask for this, call the hotline now."
    )
)
NOTICE_RESET_NEW_NUMBER = SmsTemplate(
    _(
        "Support staff reset your Public Services account, which now uses this number. Open "
        "the app and choose a new password to sign in."
    )
)
NOTICE_RESET = SmsTemplate(
    _(
        "Support staff reset your Public Services account: signed out everywhere, "
        "authenticator removed. Choose a new password in the app. Not you? Call the hotline."
    )
)


@dataclass(frozen=True)
class Context:
    """Where a support action comes from, for the audit trail."""

    channel: str = "api"  # "api" (support console) or "admin"
    ip: str | None = None


# --- The audit trail --------------------------------------------------------------------


def record_support_action(
    actor: User,
    action: str,
    *,
    subject: User | None = None,
    reset: SupportReset | None = None,
    evidence: str = "",
    approver: User | None = None,
    channel: str = "api",
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> SupportAuditRecord:
    """Append one record. Never pass secrets, codes or full ID numbers in `details`."""
    return SupportAuditRecord.objects.create(
        actor=actor,
        action=action,
        subject=subject,
        reset=reset,
        evidence=evidence,
        approver=approver,
        channel=channel,
        ip=ip,
        details=details or {},
    )


# --- Look-up --------------------------------------------------------------------------


def look_up_account(
    staff: User,
    *,
    phone: str | None = None,
    citizen_id: str | None = None,
    context: Context | None = None,
) -> User:
    """Find one account by phone or citizen ID; audited whether found or not."""
    context = context or Context()
    require_support_staff(staff)
    if bool(phone) == bool(citizen_id):
        raise Unprocessable(
            "lookup_needs_one_key", _("Give either a phone number or a citizen ID number.")
        )
    if phone:
        e164 = parse_phone(phone)
        if e164 is None:
            raise invalid_phone("phone")
        subject = User.objects.filter(phone=e164).first()
        by = "phone"
    else:
        key = (citizen_id or "").strip()
        if not CITIZEN_ID.fullmatch(key):
            raise Unprocessable(
                "invalid_citizen_id",
                _("A citizen ID number has 12 digits."),
                details=[
                    field_detail(
                        "citizen_id", "invalid_citizen_id", _("A citizen ID number has 12 digits.")
                    )
                ],
            )
        subject = User.objects.filter(citizen_id=key).first()
        by = "citizen_id"
    record_support_action(
        staff,
        Action.LOOKUP,
        subject=subject,
        channel=context.channel,
        ip=context.ip,
        details={"by": by, "found": subject is not None},
    )
    if subject is None:
        raise NotFound("account_not_found", _("No account matches."))
    return subject


def record_account_view(staff: User, subject: User, *, context: Context, by: str = "id") -> None:
    """Viewing an account in the admin counts as a look-up; `by`: what was opened
    ("id": the account's own page, or the row that shows it, e.g. "payment")."""
    record_look_up(staff, subject, context=context, by=by)


def record_audit_trail_read(staff: User, user_id: uuid.UUID, *, context: Context) -> None:
    """Reading the audit trail of one account (the support console's `GET /audit` by
    `user_id`) is a look-up of that account, as opening one of its records in the admin
    is; an id no account has names nobody, and is no look-up."""
    subject = User.objects.filter(pk=user_id).first()
    if subject is not None:
        record_account_view(staff, subject, context=context, by="audit_trail")


def record_look_up(
    staff: User,
    subject: User | None,
    *,
    context: Context,
    by: str,
    found: bool | None = None,
) -> None:
    """A search that leads to an account (`by`: by what, e.g. "dossier_code" in the
    admin) counts as a look-up, recorded whether it found one or not (`subject` None;
    `found` when a search finds rows of no one account, e.g. by a part of a number);
    what staff typed is never recorded. Superusers' look-ups in the admin are recorded
    too, authenticator or not: they see everything, so what they look at is kept."""
    if not (staff.is_superuser and staff.is_active):
        require_support_staff(staff)
    record_support_action(
        staff,
        Action.LOOKUP,
        subject=subject,
        channel=context.channel,
        ip=context.ip,
        details={"by": by, "found": subject is not None if found is None else found},
    )


def record_staff_change(
    staff: User,
    subject: User | None,
    *,
    context: Context,
    on: str,
    object_id: Any,
    action: str,
) -> None:
    """A change staff made to a citizen's row outside the support flow (a refund
    recorded, a test push sent, an anomaly resolved), in the caller's transaction:
    `on` the kind of row, `object_id` its id, `action` what was done. Never pass
    what a row holds (numbers, texts)."""
    record_support_action(
        staff,
        Action.STAFF_CHANGE,
        subject=subject,
        channel=context.channel,
        ip=context.ip,
        details={"on": on, "id": str(object_id), "action": action},
    )


# --- Resets ----------------------------------------------------------------------------


def _required_text(field: str, value: str, message: Any) -> str:
    text = (value or "").strip()
    if not text:
        raise Unprocessable(
            f"{field}_required",
            message,
            details=[field_detail(field, f"{field}_required", message)],
        )
    return text


def _expire_lapsed(subject: User, now: dt.datetime) -> None:
    cutoff = now - dt.timedelta(hours=settings.SUPPORT_RESET_APPROVAL_TTL_HOURS)
    SupportReset.objects.filter(
        user=subject, status=SupportReset.Status.PENDING, opened_at__lte=cutoff
    ).update(status=SupportReset.Status.EXPIRED, decided_at=now)


def _refuse_protected_subject(staff: User, subject: User) -> None:
    if subject.pk == staff.pk:
        raise PermissionDenied("self_reset", _("You cannot reset your own account."))
    if subject.is_staff or subject.is_superuser:
        # A staff account taken over through a reset could approve resets itself.
        raise PermissionDenied(
            "staff_account", _("Staff accounts are not reset through the support flow.")
        )


def open_reset(
    staff: User,
    subject: User,
    *,
    kind: str,
    reason: str,
    evidence: str,
    ticket_number: str,
    new_phone: str | None = None,
    context: Context | None = None,
) -> SupportReset:
    """Open a reset. Level-2 accounts wait for a second approver; others are reset now."""
    context = context or Context()
    require_support_staff(staff)
    _refuse_protected_subject(staff, subject)
    if kind not in SupportReset.Kind.values:
        raise Unprocessable(
            "invalid_kind",
            _("Not one of the allowed values."),
            details=[field_detail("kind", "invalid_kind", _("Not one of the allowed values."))],
        )
    reason = _required_text("reason", reason, _("Give the reason for the reset."))
    evidence = _required_text(
        "evidence", evidence, _("Describe how the citizen's identity was proven.")
    )
    ticket_number = _required_text("ticket_number", ticket_number, _("Give the ticket number."))
    e164 = ""
    if new_phone:
        e164 = parse_phone(new_phone) or ""
        if not e164:
            raise invalid_phone("new_phone")
    elif kind == SupportReset.Kind.NEW_PHONE_NUMBER:
        _required_text("new_phone", "", _("Give the new phone number."))
    if e164 == subject.phone:
        e164 = ""
    now = timezone.now()
    with transaction.atomic():
        subject = User.objects.select_for_update().get(pk=subject.pk)
        if e164 and _holders(e164, subject).exists():
            raise Conflict("phone_taken", _("This number belongs to another account."))
        _expire_lapsed(subject, now)
        if SupportReset.objects.filter(user=subject, status=SupportReset.Status.PENDING).exists():
            raise Conflict(
                "reset_pending", _("A reset of this account is already waiting for approval.")
            )
        reset = SupportReset.objects.create(
            user=subject,
            kind=kind,
            reason=reason,
            evidence=evidence,
            ticket_number=ticket_number,
            new_phone=e164,
            requires_approval=subject.verification_level >= User.Level.IDENTITY,
            opened_by=staff,
            opened_at=now,
        )
        record_support_action(
            staff,
            Action.RESET_OPENED,
            subject=subject,
            reset=reset,
            evidence=evidence,
            channel=context.channel,
            ip=context.ip,
            details=_reset_details(reset),
        )
        if not reset.requires_approval:
            _apply(reset, actor=staff, approver=None, context=context)
    return reset


def approve_reset(
    staff: User, reset_id: uuid.UUID | str, *, context: Context | None = None
) -> SupportReset:
    """The second staff member's approval of a level-2 reset; applies it at once."""
    context = context or Context()
    with transaction.atomic():
        reset = access_reset(staff, reset_id, for_update=True)
        _check_decidable(staff, reset)
        now = timezone.now()
        reset.status = SupportReset.Status.APPLIED
        reset.approved_by = staff
        reset.decided_by = staff
        reset.decided_at = now
        reset.save(update_fields=["status", "approved_by", "decided_by", "decided_at"])
        record_support_action(
            staff,
            Action.RESET_APPROVED,
            subject=reset.user,
            reset=reset,
            evidence=reset.evidence,
            approver=staff,
            channel=context.channel,
            ip=context.ip,
            details=_reset_details(reset),
        )
        _apply(reset, actor=staff, approver=staff, context=context)
    return reset


def reject_reset(
    staff: User, reset_id: uuid.UUID | str, *, note: str, context: Context | None = None
) -> SupportReset:
    """A second staff member refuses a pending reset; nothing changes on the account."""
    context = context or Context()
    note = _required_text("note", note, _("Say why the reset is rejected."))
    with transaction.atomic():
        reset = access_reset(staff, reset_id, for_update=True)
        _check_decidable(staff, reset)
        reset.status = SupportReset.Status.REJECTED
        reset.decided_by = staff
        reset.decided_at = timezone.now()
        reset.decision_note = note
        reset.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        record_support_action(
            staff,
            Action.RESET_REJECTED,
            subject=reset.user,
            reset=reset,
            evidence=reset.evidence,
            channel=context.channel,
            ip=context.ip,
            details={**_reset_details(reset), "note": note},
        )
    return reset


def _pending_sign_ups(phone: str, subject: User) -> QuerySet[User]:
    """Sign-ups on `phone` that never completed: they do not own the number (as for
    a phone change), and applying the reset takes it from them (`free_phone_number`)."""
    return (
        User.objects.filter(
            phone=phone,
            phone_verified_at__isnull=True,
            last_login__isnull=True,
            verification_level=User.Level.UNVERIFIED,
            device_sessions__isnull=True,
        )
        .exclude(pk=subject.pk)
        .distinct()
    )


def _holders(phone: str, subject: User) -> QuerySet[User]:
    """Other accounts that own `phone`."""
    pending = _pending_sign_ups(phone, subject).values("pk")
    return User.objects.filter(phone=phone).exclude(pk=subject.pk).exclude(pk__in=pending)


def _check_decidable(staff: User, reset: SupportReset) -> None:
    if reset.user_id == staff.pk:
        raise PermissionDenied("self_reset", _("You cannot reset your own account."))
    if reset.opened_by_id == staff.pk:
        raise PermissionDenied(
            "self_approval", _("A second staff member must decide on the reset you opened.")
        )
    if reset.status != SupportReset.Status.PENDING:
        raise Conflict("reset_not_pending", _("This reset was already decided."))
    lapsed = reset.opened_at + dt.timedelta(hours=settings.SUPPORT_RESET_APPROVAL_TTL_HOURS)
    if timezone.now() >= lapsed:
        raise Conflict("reset_expired", _("This reset waited too long; open a new one."))


def _reset_details(reset: SupportReset) -> dict[str, Any]:
    return {
        "kind": reset.kind,
        "ticket_number": reset.ticket_number,
        "reason": reset.reason,
        "new_phone_masked": mask_phone(reset.new_phone) if reset.new_phone else "",
        "requires_approval": reset.requires_approval,
    }


def _national_identity_note(subject: User) -> dict[str, Any]:
    level = identity_level(subject)
    return {"linked": bool(level), "level": level, "kept": bool(level)}


def _apply(reset: SupportReset, *, actor: User, approver: User | None, context: Context) -> None:
    """Reset the account's factors (inside the caller's transaction)."""
    now = timezone.now()
    subject = User.objects.select_for_update().get(pk=reset.user_id)
    old_phone = subject.phone
    had_totp = subject.has_totp
    subject.totp_secret = ""  # nosec B105 # clears the secret
    subject.totp_confirmed_at = None
    subject.totp_last_step = None
    subject.must_reset_password = True
    fields = ["totp_secret", "totp_confirmed_at", "totp_last_step", "must_reset_password"]
    if reset.new_phone:
        lock_phone_number(reset.new_phone)  # no sign-up verifies it between check and move
        if _holders(reset.new_phone, subject).exists():
            raise Conflict("phone_taken", _("This number belongs to another account."))
        free_phone_number(reset.new_phone, keep=subject)
        subject.phone = reset.new_phone
        # Verified by the reset's proofing; the password reset's OTP to it follows.
        subject.phone_verified_at = now
        fields += ["phone", "phone_verified_at"]
    subject.save(update_fields=fields)
    codes = RecoveryCode.objects.filter(user=subject, used_at=None).update(used_at=now)
    live_sessions = [
        str(pk)
        for pk in DeviceSession.objects.filter(user=subject, revoked_at=None)
        .order_by("pk")
        .values_list("pk", flat=True)
    ]
    sessions = end_sign_ins(subject, reason="support_reset")
    SupportReset.objects.filter(pk=reset.pk).update(
        status=SupportReset.Status.APPLIED, applied_at=now
    )
    reset.status = SupportReset.Status.APPLIED
    reset.applied_at = now
    record_support_action(
        actor,
        Action.RESET_APPLIED,
        subject=subject,
        reset=reset,
        evidence=reset.evidence,
        approver=approver,
        channel=context.channel,
        ip=context.ip,
        details={
            **_reset_details(reset),
            "totp_removed": had_totp,
            "recovery_codes_invalidated": codes,
            "sessions_revoked": sessions,
            "phone_changed": bool(reset.new_phone),
            # A linked national identity (VNeID) is kept: the citizen can still sign in with it.
            "national_identity": _national_identity_note(subject),
        },
    )
    _notify_citizen(subject, old_phone=old_phone, session_ids=live_sessions, reset=reset)


def _notify_citizen(
    subject: User, *, old_phone: str, session_ids: list[str], reset: SupportReset
) -> None:
    """SMS on the old and the new number, and the ACCOUNT_NOTICE_SUBSCRIBERS jobs
    (push to the devices of the sessions the reset just revoked); all committed
    with the reset."""
    for path in settings.ACCOUNT_NOTICE_SUBSCRIBERS:
        defer(
            import_string(path),
            user_id=str(subject.pk),
            kind="support_reset",
            session_ids=session_ids,
            reference=str(reset.pk),
        )
    purpose = "notice.support_reset"
    if subject.phone != old_phone:
        notify_owner(
            subject, NOTICE_RESET_MOVED, purpose=purpose, to=old_phone, last4=subject.phone[-4:]
        )
        notify_owner(subject, NOTICE_RESET_NEW_NUMBER, purpose=purpose)
    else:
        notify_owner(subject, NOTICE_RESET, purpose=purpose)
