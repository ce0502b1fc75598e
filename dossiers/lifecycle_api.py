"""Citizen-side lifecycle routes: withdraw, answer a supplement request, get the result."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import transaction
from django.http import FileResponse, HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Router, Schema
from pydantic import Field

from auth.bearer import bearer, current_user
from backend.errors import ErrorOut, NotFound
from dossiers import lifecycle
from dossiers.access import access_dossier, require_may_act_for
from dossiers.attachments import read_stored
from dossiers.models import Dossier

router = Router(tags=["dossiers"])


class LifecycleDossierOut(Schema):
    id: uuid.UUID
    code: str | None
    status: int
    status_label: str
    version: int
    appointment_at: dt.datetime | None
    paused_at: dt.datetime | None
    updated_at: dt.datetime

    @staticmethod
    def resolve_status_label(obj: Dossier) -> str:
        return str(Dossier.Status(obj.status).label)


class WithdrawIn(Schema):
    reason: str = Field("", max_length=2000)


class SupplementSubmitIn(Schema):
    message: str = Field("", max_length=2000, description="A note for the agency")


ERRORS: dict[int, type[ErrorOut]] = {401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


@router.post(
    "/{dossier_id}/withdraw",
    auth=bearer,
    response={200: LifecycleDossierOut, 403: ErrorOut, **ERRORS},
    summary="Withdraw a submitted dossier before the agency accepts it (1 → 7)",
)
def withdraw(request: HttpRequest, dossier_id: uuid.UUID, payload: WithdrawIn) -> Dossier:
    user = current_user(request)
    with transaction.atomic():
        dossier = access_dossier(user, dossier_id, for_update=True)
        # Undoing a submission takes the right to submit: the applicant, or the
        # organisation's owners and admins (a member who only follows it may not).
        require_may_act_for(user, dossier)
        return lifecycle.withdraw(dossier.pk, lifecycle.Actor.citizen(user), reason=payload.reason)


@router.post(
    "/{dossier_id}/supplement",
    auth=bearer,
    response={200: LifecycleDossierOut, 403: ErrorOut, **ERRORS},
    summary="Send the requested papers (upload them first); processing resumes (5 → 4)",
)
def submit_supplement(
    request: HttpRequest, dossier_id: uuid.UUID, payload: SupplementSubmitIn
) -> Dossier:
    user = current_user(request)
    with transaction.atomic():
        dossier = access_dossier(user, dossier_id, for_update=True)
        require_may_act_for(user, dossier)  # the applicant's answer to the agency
        return lifecycle.submit_supplement(
            dossier.pk, lifecycle.Actor.citizen(user), message=payload.message
        )


@router.get(
    "/{dossier_id}/result",
    auth=bearer,
    response={200: None, 401: ErrorOut, 404: ErrorOut},
    summary="Download the electronic result (PDF), once the result is ready",
    openapi_extra={
        "responses": {
            200: {
                "description": "The result, as a download (`Content-Disposition: attachment`).",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def download_result(request: HttpRequest, dossier_id: uuid.UUID) -> FileResponse:
    dossier = access_dossier(current_user(request), dossier_id)
    ready = dossier.status in (Dossier.Status.RESULT_READY, Dossier.Status.HANDED_OVER)
    if not ready or not dossier.result_file:
        raise NotFound("no_result_file", _("This dossier has no electronic result yet."))
    return FileResponse(
        read_stored(dossier.result_file.name),
        content_type=dossier.result_file_content_type or "application/pdf",
        as_attachment=True,
        filename=dossier.result_file_name or f"{dossier.code}.pdf",
    )
