"""A dossier's timeline: every step, progress, appointment and remaining time."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema

from auth.bearer import bearer, current_user
from backend.errors import ErrorOut
from dossiers.access import access_dossier
from tracking.timeline import build_timeline

router = Router(tags=["dossiers"])


class TimelineDocumentOut(Schema):
    code: str
    name: str
    note: str


class StepOut(Schema):
    event_id: int
    time: dt.datetime
    event_type: str
    actor: Literal["citizen", "agency", "officer", "carrier", "system"]
    status: int | None
    status_before: int | None
    status_label: str | None
    text: str
    message: str
    documents_requested: list[TimelineDocumentOut]
    documents_issued: list[TimelineDocumentOut]
    data: dict[str, Any]


class ProgressStepOut(Schema):
    key: Literal["submitted", "accepted", "processing", "result_ready", "handed_over"]
    label: str
    done: bool
    time: dt.datetime | None


class TimelineOut(Schema):
    dossier_id: uuid.UUID
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
    progress: list[ProgressStepOut]
    steps: list[StepOut]


@router.get(
    "/{dossier_id}/timeline",
    auth=bearer,
    response={200: TimelineOut, 401: ErrorOut, 404: ErrorOut},
    summary="A dossier's timeline",
)
def get_timeline(request: HttpRequest, dossier_id: uuid.UUID) -> Any:
    """Every step (time, status, text, the agency's message, documents requested or
    issued), progress through the usual steps, the appointment date, working time
    remaining and whether the clock is paused or overdue. Texts follow
    `Accept-Language`. `working_seconds_remaining` counts office hours only; it
    is null once the dossier left the active statuses."""
    dossier = access_dossier(current_user(request), dossier_id)
    return build_timeline(dossier)
