"""The dossier lifecycle: which actor may move a dossier from which status to which.

`TRANSITIONS` is the one table of allowed moves. Every move is one function
below, named for what it does. Each one locks the dossier row, checks the table
(409 `invalid_transition` naming the current status otherwise, with nothing
written), changes status and timestamps, bumps `Dossier.version` and writes one
event, all in one transaction.

Roles: `agency` (the back-office system or an officer in the admin), `citizen`,
`carrier` (the postal service) and `system` (periodic jobs).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile, File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth.models import User
from backend.errors import Conflict, field_error
from backend.joined_read import JoinedRead, preparing_cursor
from backend.row_writes import save_fields
from backend.times import rfc3339_or_none
from dossiers.deadlines import (
    add_working_seconds,
    appointment_for,
    processing_seconds,
    working_seconds_between,
)
from dossiers.events import EventType, record_event
from dossiers.models import Apology, Attachment, Dossier, ResultDocument, SupplementRequest
from dossiers.result_signatures import PreparedResult
from dossiers.results import refuse_revoked_papers

S = Dossier.Status

AGENCY = "agency"
CITIZEN = "citizen"
CARRIER = "carrier"
SYSTEM = "system"
ROLES = (AGENCY, CITIZEN, CARRIER, SYSTEM)

HANDOVER_METHODS = ("in_person", "post", "electronic")
# Statuses in which the processing clock runs (5 is paused, the others are closed).
CLOCK_RUNNING = frozenset({S.ACCEPTED, S.PROCESSING, S.PAYMENT_REQUESTED})


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    sources: frozenset[int]
    target: int | None  # None: the status does not change
    event_type: EventType


def _rule(roles: set[str], sources: set[int], target: int | None, event_type: EventType) -> Rule:
    return Rule(frozenset(roles), frozenset(int(s) for s in sources), target, event_type)


# The one table. `submit` (0 → 1) is performed by dossiers.actions.submit_dossier.
TRANSITIONS: dict[str, Rule] = {
    "submit": _rule({CITIZEN}, {S.DRAFT}, S.NEW, EventType.DOSSIER_SUBMITTED),
    "withdraw": _rule({CITIZEN}, {S.NEW}, S.WITHDRAWN, EventType.DOSSIER_WITHDRAWN),
    "submit_supplement": _rule(
        {CITIZEN}, {S.SUPPLEMENT_REQUESTED}, S.PROCESSING, EventType.DOSSIER_SUPPLEMENT_SUBMITTED
    ),
    "accept": _rule({AGENCY}, {S.NEW}, S.ACCEPTED, EventType.DOSSIER_ACCEPTED),
    "refuse": _rule({AGENCY}, {S.NEW}, S.REFUSED, EventType.DOSSIER_REFUSED),
    "start_processing": _rule(
        {AGENCY},
        {S.ACCEPTED, S.PAYMENT_REQUESTED},
        S.PROCESSING,
        EventType.DOSSIER_PROCESSING_STARTED,
    ),
    "request_supplement": _rule(
        {AGENCY},
        {S.ACCEPTED, S.PROCESSING},
        S.SUPPLEMENT_REQUESTED,
        EventType.DOSSIER_SUPPLEMENT_REQUESTED,
    ),
    "request_payment": _rule(
        {AGENCY},
        {S.ACCEPTED, S.PROCESSING},
        S.PAYMENT_REQUESTED,
        EventType.DOSSIER_PAYMENT_REQUESTED,
    ),
    # A paid fee request: performed by the payments app when the gateway confirms it.
    "record_payment": _rule(
        {SYSTEM}, {S.PAYMENT_REQUESTED}, S.PROCESSING, EventType.DOSSIER_PAYMENT_RECEIVED
    ),
    "complete": _rule(
        {AGENCY},
        {S.ACCEPTED, S.PROCESSING, S.PAYMENT_REQUESTED},
        S.RESULT_READY,
        EventType.DOSSIER_COMPLETED,
    ),
    "hand_over": _rule(
        {AGENCY, CARRIER}, {S.RESULT_READY}, S.HANDED_OVER, EventType.DOSSIER_HANDED_OVER
    ),
    "stop": _rule(
        {AGENCY},
        {S.ACCEPTED, S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.PAYMENT_REQUESTED},
        S.STOPPED,
        EventType.DOSSIER_STOPPED,
    ),
    "apologise": _rule(
        {AGENCY},
        {S.ACCEPTED, S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.PAYMENT_REQUESTED},
        None,
        EventType.DOSSIER_APOLOGISED,
    ),
    "mark_overdue": _rule({SYSTEM}, set(CLOCK_RUNNING), None, EventType.DOSSIER_OVERDUE),
    "warn_deadline_at_risk": _rule(
        {SYSTEM}, set(CLOCK_RUNNING), None, EventType.DOSSIER_DEADLINE_AT_RISK
    ),
}


def allowed_actions(role: str, status: int) -> list[str]:
    """The actions `role` may perform on a dossier in `status`, in table order."""
    return [
        name
        for name, rule in TRANSITIONS.items()
        if role in rule.roles and int(status) in rule.sources
    ]


@dataclass(frozen=True)
class Actor:
    """Who performs a move. `kind` is the event's actor type."""

    kind: str  # agency | officer | citizen | carrier | system
    user: User | None = None
    label: str = ""

    @property
    def role(self) -> str:
        return AGENCY if self.kind in ("agency", "officer") else self.kind

    @classmethod
    def agency_system(cls, label: str) -> Actor:
        return cls("agency", None, label)

    @classmethod
    def officer(cls, user: User) -> Actor:
        return cls("officer", user, user.full_name)

    @classmethod
    def citizen(cls, user: User) -> Actor:
        return cls("citizen", user, user.full_name)

    @classmethod
    def carrier(cls, label: str = "") -> Actor:
        return cls("carrier", None, label)

    @classmethod
    def system(cls) -> Actor:
        return cls("system", None, "")


class InvalidTransition(Conflict):
    def __init__(self, action: str, dossier: Dossier, actor: Actor) -> None:
        status = Dossier.Status(dossier.status)
        super().__init__(
            "invalid_transition",
            _("This cannot be done while the dossier is “%(status)s”.") % {"status": status.label},
            details={
                "action": action,
                "actor": actor.role,
                "current_status": int(status),
                "current_status_label": str(status.label),
            },
        )


def _lock(dossier_id: uuid.UUID | str) -> Dossier:
    return (
        Dossier.objects.select_for_update(of=("self",))
        .select_related("procedure", "agency")
        .get(pk=dossier_id)
    )


def ensure_allowed(action: str, dossier: Dossier, actor: Actor) -> None:
    """Raise 409 `invalid_transition` unless the table lets `actor` do `action` now.

    For moves performed elsewhere (`submit` in dossiers.actions): call it on the
    locked row before writing anything.
    """
    rule = TRANSITIONS[action]
    if actor.role not in rule.roles or dossier.status not in rule.sources:
        raise InvalidTransition(action, dossier, actor)


def _begin(dossier_id: uuid.UUID | str, action: str, actor: Actor) -> Dossier:
    """Lock the row and check the table; raises before anything is written."""
    dossier = _lock(dossier_id)
    ensure_allowed(action, dossier, actor)
    return dossier


def _finish(
    dossier: Dossier,
    action: str,
    actor: Actor,
    *,
    message: str = "",
    data: dict[str, Any] | None = None,
    saved: tuple[str, ...] | None = None,
) -> Dossier:
    """Move, bump the version and write the event. `saved`: the fields the move
    changed besides the status and the version, when the row is to be written in
    part (a row read with `only`); every field when omitted."""
    rule = TRANSITIONS[action]
    before = dossier.status
    if rule.target is not None:
        dossier.status = rule.target
    dossier.version += 1
    if saved is None:
        dossier.save()
    else:
        save_fields(dossier, ["status", "version", "updated_at", *saved])
    return _recorded(dossier, rule, actor, before, message=message, data=data)


def _recorded(
    dossier: Dossier,
    rule: Rule,
    actor: Actor,
    before: int,
    *,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> Dossier:
    """`dossier`, moved by `rule` from `before`, with the move's event written."""
    record_event(
        dossier,
        type=rule.event_type,
        actor_type=actor.kind,
        status_before=before,
        status_after=dossier.status,
        actor_user=actor.user,
        actor_label=actor.label,
        message=message,
        data=data or {},
    )
    return dossier


def _iso(moment: dt.datetime | None) -> str | None:
    return rfc3339_or_none(moment)


# --- Citizen ------------------------------------------------------------------------


@transaction.atomic
def withdraw(dossier_id: uuid.UUID | str, actor: Actor, *, reason: str = "") -> Dossier:
    """The citizen takes the dossier back before the agency accepted it (1 → 7)."""
    dossier = _begin(dossier_id, "withdraw", actor)
    return _finish(dossier, "withdraw", actor, message=reason, data={"reason": reason})


@transaction.atomic
def submit_supplement(dossier_id: uuid.UUID | str, actor: Actor, *, message: str = "") -> Dossier:
    """The citizen sends the requested papers (5 → 4); the clock resumes.

    The appointment moves later by the working time the dossier spent paused.
    Every requested document that names a catalogue code needs a file uploaded
    since the request, and no paper may be a result revoked since it was attached
    (`refuse_revoked_papers`).
    """
    dossier = _begin(dossier_id, "submit_supplement", actor)
    now = timezone.now()
    request = dossier.supplements.filter(answered_at__isnull=True).first()
    if request is not None:
        codes = {item.get("code") for item in request.documents if item.get("code")}
        uploaded = set(
            Attachment.objects.filter(
                dossier=dossier, document_code__in=codes, created_at__gte=request.requested_at
            ).values_list("document_code", flat=True)
        )
        missing = sorted(codes - uploaded)
        if missing:
            raise field_error(
                "documents",
                "supplement_incomplete",
                _("Upload the requested papers first: %(codes)s.") % {"codes": ", ".join(missing)},
            )
    refuse_revoked_papers(dossier)
    paused_from = dossier.paused_at or now
    paused = working_seconds_between(dossier.agency, paused_from, now)
    previous_appointment = dossier.appointment_at
    if paused > 0:
        if dossier.appointment_at is not None:
            dossier.appointment_at = add_working_seconds(
                dossier.agency, dossier.appointment_at, paused
            )
        if dossier.original_appointment_at is not None:
            dossier.original_appointment_at = add_working_seconds(
                dossier.agency, dossier.original_appointment_at, paused
            )
        dossier.deadline_warned_at = None  # the deadline moved: warn again if needed
    dossier.paused_at = None
    dossier.paused_working_seconds += paused
    if request is not None:
        request.answered_at = now
        request.citizen_message = message
        request.paused_working_seconds = paused
        request.save(update_fields=["answered_at", "citizen_message", "paused_working_seconds"])
    return _finish(
        dossier,
        "submit_supplement",
        actor,
        message=message,
        data={
            "supplement_request_id": request.id if request else None,
            "paused_working_seconds": paused,
            "previous_appointment_at": _iso(previous_appointment),
            "appointment_at": _iso(dossier.appointment_at),
        },
    )


# --- Agency -------------------------------------------------------------------------


@transaction.atomic
def accept(
    dossier_id: uuid.UUID | str,
    actor: Actor,
    *,
    receipt_number: str = "",
    appointment_at: dt.datetime | None = None,
    message: str = "",
) -> Dossier:
    """Accept at reception and issue the receipt (form 01) with the appointment (1 → 2)."""
    dossier = _begin(dossier_id, "accept", actor)
    now = timezone.now()
    dossier.accepted_at = now
    dossier.appointment_at = appointment_at or appointment_for(dossier.procedure, now)
    return _finish(
        dossier,
        "accept",
        actor,
        message=message,
        data={
            "form": "01",
            "receipt_number": receipt_number or dossier.code or "",
            "accepted_at": _iso(now),
            "appointment_at": _iso(dossier.appointment_at),
        },
    )


@transaction.atomic
def refuse(dossier_id: uuid.UUID | str, actor: Actor, *, reason: str) -> Dossier:
    """Refuse at reception with the reason (form 03) (1 → 3)."""
    dossier = _begin(dossier_id, "refuse", actor)
    dossier.finished_at = timezone.now()
    return _finish(dossier, "refuse", actor, message=reason, data={"form": "03", "reason": reason})


@transaction.atomic
def start_processing(dossier_id: uuid.UUID | str, actor: Actor, *, message: str = "") -> Dossier:
    """Start (or, after a payment request, continue) processing (2, 6 → 4)."""
    dossier = _begin(dossier_id, "start_processing", actor)
    return _finish(dossier, "start_processing", actor, message=message)


@transaction.atomic
def request_supplement(
    dossier_id: uuid.UUID | str,
    actor: Actor,
    *,
    documents: list[dict[str, str]],
    message: str,
) -> Dossier:
    """Ask for missing or incorrect papers (form 02); the clock pauses (2, 4 → 5).

    `documents`: `{"code": <RequiredDocument code or "">, "note": <free text>}`
    items; a code must belong to the dossier's procedure.
    """
    dossier = _begin(dossier_id, "request_supplement", actor)
    catalogue = {doc.code: doc for doc in dossier.procedure.documents.all()}
    items = []
    for index, item in enumerate(documents):
        code = (item.get("code") or "").strip()
        note = (item.get("note") or "").strip()
        if code and code not in catalogue:
            raise field_error(
                f"documents.{index}.code",
                "unknown_document",
                _("This procedure has no document “%(code)s”.") % {"code": code},
            )
        if not code and not note:
            raise field_error(
                f"documents.{index}",
                "empty_document",
                _("Name a document code or describe what is missing."),
            )
        doc = catalogue.get(code)
        items.append(
            {
                "code": code,
                "name": doc.name if doc else "",
                "name_en": doc.name_en if doc else "",
                "note": note,
            }
        )
    if not items:
        raise field_error(
            "documents", "no_documents", _("List at least one missing or incorrect document.")
        )
    now = timezone.now()
    request = SupplementRequest.objects.create(
        dossier=dossier,
        documents=items,
        message=message,
        requested_at=now,
        requested_by=actor.label,
    )
    dossier.paused_at = now
    return _finish(
        dossier,
        "request_supplement",
        actor,
        message=message,
        data={"form": "02", "supplement_request_id": request.id, "documents": items},
    )


FEE_LINE_KINDS = ("fee", "charge", "postage")  # phí, lệ phí, cước bưu chính


@transaction.atomic
def request_payment(
    dossier_id: uuid.UUID | str,
    actor: Actor,
    *,
    amount: int,
    description: str = "",
    lines: list[dict[str, Any]] | None = None,
) -> Dossier:
    """Ask the citizen to pay fees or taxes (amount in VND) (2, 4 → 6).

    `lines`: `{"kind": "fee" | "charge" | "postage", "label": str, "amount": int}`
    items that add up to `amount`; without them the whole amount is one fee line.
    """
    items: list[dict[str, Any]] = [
        {
            "kind": str(line["kind"]),
            "label": str(line.get("label") or ""),
            "amount": int(line["amount"]),
        }
        for line in (lines or [])
    ]
    for index, item in enumerate(items):
        if item["kind"] not in FEE_LINE_KINDS:
            raise field_error(
                f"lines.{index}.kind", "invalid_kind", _("Not one of the allowed values.")
            )
    if items and sum(int(item["amount"]) for item in items) != amount:
        raise field_error(
            "lines", "lines_total_mismatch", _("The lines do not add up to the amount.")
        )
    dossier = _begin(dossier_id, "request_payment", actor)
    dossier.payment_amount = amount
    return _finish(
        dossier,
        "request_payment",
        actor,
        message=description,
        data={
            "amount": amount,
            "currency": "VND",
            "description": description,
            "lines": items or [{"kind": "fee", "label": description, "amount": amount}],
        },
    )


# What `record_payment` reads when the dossier is not payable: the move's (status,
# version) and its event's (dossiers.events.record_event: the organisation and the
# agency it copies, the applicant among the recipients).
PAYMENT_MOVE_FIELDS = ("status", "version", "organisation", "agency", "applicant")
# Compiled once (backend/joined_read.py): the ORM built this lock's query on every call.
_PAYMENT_MOVE_LOCK = JoinedRead(Dossier, PAYMENT_MOVE_FIELDS, for_update=True)
# The paid move in one statement: the row locked (as an UPDATE locks it), checked
# against the table (its status the rule's one source), moved and read back.
_PAY_SQL = (
    'UPDATE "dossiers_dossier" SET "status" = %s, "version" = "version" + 1, '
    '"updated_at" = %s WHERE "id" = %s AND "status" = %s '
    'RETURNING "version", "organisation_id", "agency_id", "applicant_id"'
)
# The one status a paid fee moves a dossier from (the event's status before); the
# table must keep it one for the UPDATE above.
[_PAID_FROM] = TRANSITIONS["record_payment"].sources


def _paid_in_place(dossier_id: uuid.UUID | str, actor: Actor) -> Dossier | None:
    """The dossier moved by `record_payment`'s rule in one UPDATE ... RETURNING, or
    None when the table does not let `actor` move it now (then nothing is written)."""
    rule = TRANSITIONS["record_payment"]
    if actor.role not in rule.roles or rule.target is None:
        return None
    connection = transaction.get_connection()
    meta = Dossier._meta
    key = meta.pk.to_python(dossier_id)  # a malformed key fails as with the ORM
    now = timezone.now()
    params = [
        rule.target,
        meta.get_field("updated_at").get_db_prep_save(now, connection),
        meta.pk.get_db_prep_value(key, connection),
        _PAID_FROM,
    ]
    with preparing_cursor(connection) as cursor:
        cursor.execute(_PAY_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    version, organisation_id, agency_id, applicant_id = row
    loaded = {
        "id": key,
        "status": rule.target,
        "version": version,
        "updated_at": now,
        "organisation_id": meta.get_field("organisation").to_python(organisation_id),
        "agency_id": agency_id,
        "applicant_id": meta.get_field("applicant").to_python(applicant_id),
    }
    # In the model's order of fields, as `from_db` takes them; the others deferred.
    names = [field.attname for field in meta.concrete_fields if field.attname in loaded]
    return Dossier.from_db(connection.alias, names, [loaded[name] for name in names])


def record_payment(
    dossier_id: uuid.UUID | str,
    actor: Actor,
    *,
    amount: int,
    payment_id: str,
    gateway: str,
    gateway_reference: str,
    receipt_number: str,
) -> Dossier:
    """The requested fees were paid online: processing resumes (6 → 4).

    Called by the payments app (a higher layer) inside its own transaction, once
    the gateway's signed confirmation has been checked. It opens no savepoint
    (two statements on every paid callback): it refuses (InvalidTransition) before
    writing anything, so the caller's transaction goes on to its refund path
    unharmed; any other error ends the caller's transaction.

    On the path of every paid callback the move is one UPDATE ... RETURNING: it
    locks the row, moves it only from the table's source status (waiting, as a
    locked read would, for a move under way and then looking again), writes only
    what moves and reads back what the event needs; the dossier returned has its
    other fields deferred. When it moves nothing, the locked read gives the table's
    answer (InvalidTransition, or DoesNotExist) as for every other move.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_payment runs inside the caller's transaction")
    data = {
        "amount": amount,
        "currency": "VND",
        "payment_id": payment_id,
        "gateway": gateway,
        "gateway_reference": gateway_reference,
        "receipt_number": receipt_number,
    }
    rule = TRANSITIONS["record_payment"]
    moved = _paid_in_place(dossier_id, actor)
    if moved is not None:
        return _recorded(moved, rule, actor, _PAID_FROM, data=data)
    dossier = _PAYMENT_MOVE_LOCK.get(pk=dossier_id)
    ensure_allowed("record_payment", dossier, actor)  # raises unless it became payable
    return _finish(dossier, "record_payment", actor, saved=(), data=data)


@transaction.atomic
def complete(
    dossier_id: uuid.UUID | str,
    actor: Actor,
    *,
    message: str = "",
    result_file: File[Any] | None = None,
    result_file_name: str = "",
    result_content_type: str = "",
    signed_result: PreparedResult | None = None,
    valid_until: dt.date | None = None,
) -> Dossier:
    """The result is ready (→ 9), optionally as an electronic file the citizen downloads.

    A `signed_result` (dossiers/result_signatures.py: validated or signed by the
    server) is stored as the result file and recorded as a ResultDocument with
    its verification code, in this transaction.
    """
    dossier = _begin(dossier_id, "complete", actor)
    now = timezone.now()
    dossier.finished_at = now
    started = dossier.accepted_at or dossier.submitted_at
    if started is not None:
        # Frozen with the finish: the performance report averages it in SQL.
        spent = working_seconds_between(dossier.agency, started, now)
        dossier.processing_seconds = processing_seconds(spent, dossier.paused_working_seconds)
    if signed_result is not None:
        result_file = ContentFile(signed_result.data)
        result_content_type = "application/pdf"
    if result_file is not None:
        dossier.result_file.save("result", result_file, save=False)
        dossier.result_file_name = result_file_name[:255]
        dossier.result_file_content_type = result_content_type[:100]
    data: dict[str, Any] = {}
    if signed_result is not None:
        facts = signed_result.facts
        ResultDocument.objects.create(
            dossier=dossier,
            verification_code=signed_result.verification_code,
            source=signed_result.source,
            file=dossier.result_file.name,
            sha256=facts.sha256,
            size=len(signed_result.data),
            signer_name=facts.signer_name,
            signer_organisation=facts.signer_organisation,
            certificate_serial=facts.certificate_serial,
            certificate_issuer=facts.certificate_issuer,
            signing_time=facts.signing_time,
            valid_until=valid_until,
        )
        data["verification_code"] = signed_result.verification_code
    deadline = dossier.original_appointment_at or dossier.appointment_at
    return _finish(
        dossier,
        "complete",
        actor,
        message=message,
        data={
            "finished_at": _iso(now),
            "on_time": deadline is None or now <= deadline,
            "has_result_file": bool(dossier.result_file),
            **data,
        },
    )


@transaction.atomic
def hand_over(
    dossier_id: uuid.UUID | str, actor: Actor, *, method: str, message: str = ""
) -> Dossier:
    """The citizen received the result (9 → 10): in person, by post or electronically."""
    if method not in HANDOVER_METHODS:
        raise field_error("method", "invalid_method", _("Not one of the allowed values."))
    dossier = _begin(dossier_id, "hand_over", actor)
    if actor.role == CARRIER and method != "post":
        raise field_error("method", "invalid_method", _("The postal carrier hands over by post."))
    dossier.handed_over_at = timezone.now()
    dossier.handover_method = method
    return _finish(dossier, "hand_over", actor, message=message, data={"method": method})


@transaction.atomic
def stop(dossier_id: uuid.UUID | str, actor: Actor, *, reason: str) -> Dossier:
    """Stop processing, with the reason (→ 8)."""
    dossier = _begin(dossier_id, "stop", actor)
    dossier.finished_at = timezone.now()
    dossier.paused_at = None
    return _finish(dossier, "stop", actor, message=reason, data={"reason": reason})


@transaction.atomic
def apologise(
    dossier_id: uuid.UUID | str,
    actor: Actor,
    *,
    new_appointment_at: dt.datetime,
    reason: str,
) -> Dossier:
    """Apologise for the delay (form 04) with a later appointment the citizen sees.

    The first apology keeps the legal deadline in `original_appointment_at`:
    statistics judge the dossier by it, not by the promised new date.
    """
    dossier = _begin(dossier_id, "apologise", actor)
    previous = dossier.appointment_at
    if previous is None or new_appointment_at <= previous:
        raise field_error(
            "new_appointment_at",
            "appointment_not_later",
            _("The new appointment must be later than the current one."),
        )
    if dossier.original_appointment_at is None:
        dossier.original_appointment_at = previous
    Apology.objects.create(
        dossier=dossier,
        previous_appointment_at=previous,
        new_appointment_at=new_appointment_at,
        reason=reason,
        issued_by=actor.label,
    )
    dossier.appointment_at = new_appointment_at
    dossier.apologised_at = timezone.now()
    return _finish(
        dossier,
        "apologise",
        actor,
        message=reason,
        data={
            "form": "04",
            "previous_appointment_at": _iso(previous),
            "original_appointment_at": _iso(dossier.original_appointment_at),
            "new_appointment_at": _iso(new_appointment_at),
        },
    )


# --- System -------------------------------------------------------------------------


@transaction.atomic
def mark_overdue(dossier_id: uuid.UUID | str, actor: Actor | None = None) -> Dossier | None:
    """Record once that the dossier passed its deadline without a result."""
    actor = actor or Actor.system()
    dossier = _begin(dossier_id, "mark_overdue", actor)
    deadline = dossier.original_appointment_at or dossier.appointment_at
    now = timezone.now()
    if dossier.overdue_at is not None or dossier.paused_at or deadline is None or deadline >= now:
        return None
    dossier.overdue_at = now
    return _finish(
        dossier,
        "mark_overdue",
        actor,
        data={"deadline": _iso(deadline), "appointment_at": _iso(dossier.appointment_at)},
    )


@transaction.atomic
def warn_deadline_at_risk(
    dossier_id: uuid.UUID | str, actor: Actor | None = None, *, seconds_left: int
) -> Dossier | None:
    """Record once (per deadline) that less than one working day is left."""
    actor = actor or Actor.system()
    dossier = _begin(dossier_id, "warn_deadline_at_risk", actor)
    if dossier.deadline_warned_at is not None or dossier.overdue_at is not None:
        return None
    dossier.deadline_warned_at = timezone.now()
    return _finish(
        dossier,
        "warn_deadline_at_risk",
        actor,
        data={
            "appointment_at": _iso(dossier.appointment_at),
            "working_seconds_left": seconds_left,
        },
    )


# Every move by name (the admin and the tests walk it with the table).
ACTIONS = {
    "withdraw": withdraw,
    "submit_supplement": submit_supplement,
    "accept": accept,
    "refuse": refuse,
    "start_processing": start_processing,
    "request_supplement": request_supplement,
    "request_payment": request_payment,
    "record_payment": record_payment,
    "complete": complete,
    "hand_over": hand_over,
    "stop": stop,
    "apologise": apologise,
    "mark_overdue": mark_overdue,
    "warn_deadline_at_risk": warn_deadline_at_risk,
}
