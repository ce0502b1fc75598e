"""A dossier's timeline, read from its event log: steps, progress, time left.

Texts follow the active language (the request's Accept-Language). Document
lists come from event data, as the lifecycle actions record them:
`data.documents` of `dossier.supplement_requested` (what the agency asks
for), `data.documents_issued` / `data.result_files` of `dossier.completed`
and `dossier.handed_over` (what it gives back); each item is a string or an
object with `code`, `name` and optionally `reason`/`note`. The forms of
Circular 01/2018 that go with a step (01 receipt, 02 supplement request,
03 refusal, 04 apology) are listed as issued documents of that step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from dossiers.deadlines import MAX_SCAN_DAYS, WorkingCalendar
from dossiers.events import EventType
from dossiers.models import Dossier, DossierEvent
from tracking.texts import event_text

Status = Dossier.Status

# The usual path of a dossier, and what moves it along.
PROGRESS_STEPS: list[tuple[str, Promise, EventType, set[int]]] = [
    (
        "submitted",
        pgettext_lazy("dossier step", "Submitted"),
        EventType.DOSSIER_SUBMITTED,
        {Status.NEW},
    ),
    (
        "accepted",
        pgettext_lazy("dossier step", "Accepted"),
        EventType.DOSSIER_ACCEPTED,
        {Status.ACCEPTED},
    ),
    (
        "processing",
        pgettext_lazy("dossier step", "Processing"),
        EventType.DOSSIER_PROCESSING_STARTED,
        {Status.PROCESSING, Status.SUPPLEMENT_REQUESTED, Status.PAYMENT_REQUESTED},
    ),
    (
        "result_ready",
        pgettext_lazy("dossier step", "Result ready"),
        EventType.DOSSIER_COMPLETED,
        {Status.RESULT_READY},
    ),
    (
        "handed_over",
        pgettext_lazy("dossier step", "Result handed over"),
        EventType.DOSSIER_HANDED_OVER,
        {Status.HANDED_OVER},
    ),
]

# While in one of these, the processing clock runs (or is paused) towards the appointment.
ACTIVE_STATUSES = {
    Status.NEW,
    Status.ACCEPTED,
    Status.PROCESSING,
    Status.SUPPLEMENT_REQUESTED,
    Status.PAYMENT_REQUESTED,
}

FORMS: dict[str, tuple[str, Promise]] = {
    EventType.DOSSIER_ACCEPTED: ("form_01", _("Receipt and appointment slip (form 01)")),
    EventType.DOSSIER_SUPPLEMENT_REQUESTED: (
        "form_02",
        _("Request to add or correct documents (form 02)"),
    ),
    EventType.DOSSIER_REFUSED: ("form_03", _("Refusal notice (form 03)")),
    EventType.DOSSIER_APOLOGISED: (
        "form_04",
        _("Apology letter with a new appointment date (form 04)"),
    ),
}


@dataclass
class Document:
    code: str
    name: str
    note: str = ""


@dataclass
class Step:
    event_id: int
    time: dt.datetime
    event_type: str
    actor: str
    status: int | None
    status_before: int | None
    status_label: str | None
    text: str
    message: str
    documents_requested: list[Document] = field(default_factory=list)
    documents_issued: list[Document] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProgressStep:
    key: str
    label: str
    done: bool
    time: dt.datetime | None


@dataclass
class Timeline:
    dossier_id: Any
    code: str | None
    status: int
    status_label: str
    submitted_at: dt.datetime | None
    appointment_at: dt.datetime | None
    finished_at: dt.datetime | None
    paused: bool
    paused_since: dt.datetime | None
    overdue: bool
    finished_late: bool | None
    working_seconds_remaining: int | None
    working_days_remaining: float | None
    progress: list[ProgressStep]
    steps: list[Step]


def _documents(value: Any) -> list[Document]:
    if not isinstance(value, list):
        return []
    documents = []
    for item in value:
        if isinstance(item, str):
            documents.append(Document(code=item, name=item))
        elif isinstance(item, dict):
            code = str(item.get("code") or item.get("id") or "")
            name = str(item.get("name") or item.get("title") or code)
            note = str(item.get("reason") or item.get("note") or "")
            documents.append(Document(code=code, name=name, note=note))
    return documents


def _status_label(status: int | None) -> str | None:
    if status is None or status not in Status.values:
        return None
    return str(Status(status).label)


def step_for(event: DossierEvent) -> Step:
    data = dict(event.data or {})
    requested: list[Document] = []
    issued: list[Document] = []
    if event.type == EventType.DOSSIER_SUPPLEMENT_REQUESTED:
        requested = _documents(data.get("documents"))
    if event.type in {EventType.DOSSIER_COMPLETED, EventType.DOSSIER_HANDED_OVER}:
        issued = _documents(data.get("documents_issued")) or _documents(data.get("result_files"))
    if event.type in FORMS:
        code, name = FORMS[event.type]
        issued.insert(0, Document(code=code, name=str(name)))
    return Step(
        event_id=event.id,
        time=event.created_at,
        event_type=event.type,
        actor=event.actor_type,
        status=event.status_after,
        status_before=event.status_before,
        status_label=_status_label(event.status_after),
        text=event_text(event.type, data),
        message=event.message,
        documents_requested=requested,
        documents_issued=issued,
        data=data,
    )


def progress_of(dossier: Dossier, events: list[DossierEvent]) -> list[ProgressStep]:
    """Which usual steps are done: reached by an event, or implied by a later step."""
    reached = -1
    times: dict[str, dt.datetime] = {}
    for index, (key, _label, event_type, statuses) in enumerate(PROGRESS_STEPS):
        if dossier.status in statuses:
            reached = max(reached, index)
        for event in events:
            if event.type == event_type:
                reached = max(reached, index)
                times.setdefault(key, event.created_at)
    return [
        ProgressStep(key=key, label=str(label), done=index <= reached, time=times.get(key))
        for index, (key, label, _type, _statuses) in enumerate(PROGRESS_STEPS)
    ]


def build_timeline(dossier: Dossier, now: dt.datetime | None = None) -> Timeline:
    now = now or timezone.now()
    events = list(DossierEvent.objects.filter(dossier=dossier).order_by("seq"))
    appointment = dossier.appointment_at
    paused_since = dossier.paused_at
    remaining: int | None = None
    days: float | None = None
    overdue = False
    reference = paused_since or now  # a paused clock stays where the pause found it
    if (
        appointment is not None
        and dossier.status in ACTIVE_STATUSES
        # Working time is counted within the calendars' horizon (an appointment given
        # before AGENCY_APPOINTMENT_MAX_DAYS existed may lie beyond it): none beyond.
        and appointment - reference < dt.timedelta(days=MAX_SCAN_DAYS - 1)
    ):
        calendar = WorkingCalendar(dossier.agency)
        remaining = calendar.seconds_between(reference, appointment)
        per_day = calendar.seconds_per_day()
        days = round(remaining / per_day, 1) if per_day else None
        overdue = reference > appointment
    finished_late = None
    if appointment is not None and dossier.finished_at is not None:
        finished_late = dossier.finished_at > appointment
    return Timeline(
        dossier_id=dossier.id,
        code=dossier.code,
        status=dossier.status,
        status_label=_status_label(dossier.status) or "",
        submitted_at=dossier.submitted_at,
        appointment_at=appointment,
        finished_at=dossier.finished_at,
        paused=paused_since is not None,
        paused_since=paused_since,
        overdue=overdue,
        finished_late=finished_late,
        working_seconds_remaining=remaining,
        working_days_remaining=days,
        progress=progress_of(dossier, events),
        steps=[step_for(event) for event in events],
    )
