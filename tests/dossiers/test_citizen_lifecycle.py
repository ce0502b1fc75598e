"""Supplement (the clock pauses, the date moves by the paused working time) and withdrawal."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core.files.base import ContentFile

from backend.errors import Unprocessable
from dossiers import lifecycle
from dossiers.lifecycle import Actor
from dossiers.models import Agency, Attachment, Dossier, DossierEvent, SupplementRequest
from tests.conftest import ApiClient, make_user, sign_in
from tests.dossiers.conftest import AgencyClient, at, frozen
from tests.factories import make_dossier, make_procedure

pytestmark = pytest.mark.django_db
S = Dossier.Status
AGENCY = Actor.agency_system("T (ak_test)")


def upload(dossier: Dossier, code: str, content: bytes = b"%PDF-1.4 paper") -> Attachment:
    return Attachment.objects.create(
        dossier=dossier,
        document_code=code,
        kind=Attachment.Kind.PDF,
        file=ContentFile(content, name="paper.pdf"),
        content_type="application/pdf",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        uploaded_by=dossier.applicant,
    )


def processing_dossier(agency: Agency | None = None, **extra: object) -> Dossier:
    procedure = make_procedure(agency, documents=2) if agency else make_procedure(documents=2)
    return make_dossier(make_user(password=None), procedure, status=S.PROCESSING, **extra)


def events(dossier: Dossier) -> list[str]:
    return list(DossierEvent.objects.filter(dossier=dossier).values_list("type", flat=True))


def test_supplement_request_pauses_the_clock_and_lists_the_documents() -> None:
    dossier = processing_dossier(appointment_at=at(2026, 3, 13, 16, 0))
    with frozen(at(2026, 3, 10, 10, 0)):
        lifecycle.request_supplement(
            dossier.pk,
            AGENCY,
            documents=[{"code": "doc-2", "note": "Ảnh bị mờ"}, {"note": "Giấy ủy quyền"}],
            message="Vui lòng bổ sung",
        )
    dossier.refresh_from_db()
    assert dossier.status == S.SUPPLEMENT_REQUESTED
    assert dossier.paused_at == at(2026, 3, 10, 10, 0)
    request = SupplementRequest.objects.get(dossier=dossier)
    expected_items = [
        {"code": "doc-2", "name": "Giấy tờ 2", "name_en": "Document 2", "note": "Ảnh bị mờ"},
        {"code": "", "name": "", "name_en": "", "note": "Giấy ủy quyền"},
    ]
    assert request.documents == expected_items
    event = DossierEvent.objects.get(dossier=dossier)
    assert event.type == "dossier.supplement_requested"
    assert event.message == "Vui lòng bổ sung"
    assert event.data == {
        "form": "02",
        "supplement_request_id": request.id,
        "documents": expected_items,
    }


def test_supplement_with_an_unknown_document_code_writes_nothing() -> None:
    dossier = processing_dossier(appointment_at=at(2026, 3, 13, 16, 0))
    with pytest.raises(Unprocessable) as caught:
        lifecycle.request_supplement(
            dossier.pk, AGENCY, documents=[{"code": "passport"}], message="m"
        )
    assert caught.value.details[0]["code"] == "unknown_document"
    dossier.refresh_from_db()
    assert dossier.status == S.PROCESSING
    assert dossier.paused_at is None
    assert SupplementRequest.objects.count() == 0
    assert events(dossier) == []


def test_submitted_supplement_moves_the_appointment_by_exactly_the_paused_working_time() -> None:
    dossier = processing_dossier(appointment_at=at(2026, 3, 13, 16, 0))
    with frozen(at(2026, 3, 10, 10, 0)):  # Tuesday 10:00
        lifecycle.request_supplement(dossier.pk, AGENCY, documents=[{"code": "doc-1"}], message="m")
    with frozen(at(2026, 3, 11, 9, 0)):
        upload(dossier, "doc-1")
    with frozen(at(2026, 3, 12, 9, 0)):  # Thursday 09:00
        lifecycle.submit_supplement(
            dossier.pk, Actor.citizen(dossier.applicant), message="Đã bổ sung"
        )
    # Paused: Tue 10:00-11:30 and 13:30-17:00 (5 h), Wed (8 h), Thu 07:00-09:00 (2 h) = 15 h.
    # Fri 16:00 + 15 working hours: Fri 1 h, Mon 8 h, Tue 07:00-11:30 and 13:30-15:00 -> Tue 15:00.
    dossier.refresh_from_db()
    assert dossier.status == S.PROCESSING
    assert dossier.paused_at is None
    assert dossier.paused_working_seconds == 15 * 3600
    assert dossier.appointment_at == at(2026, 3, 17, 15, 0)
    request = SupplementRequest.objects.get(dossier=dossier)
    assert request.answered_at == at(2026, 3, 12, 9, 0)
    assert request.paused_working_seconds == 15 * 3600
    assert request.citizen_message == "Đã bổ sung"
    event = DossierEvent.objects.filter(dossier=dossier).last()
    assert event is not None
    assert event.type == "dossier.supplement_submitted"
    assert event.actor_type == "citizen"
    assert event.data["paused_working_seconds"] == 54000
    assert dt.datetime.fromisoformat(event.data["previous_appointment_at"]) == at(2026, 3, 13, 16)
    assert dt.datetime.fromisoformat(event.data["appointment_at"]) == at(2026, 3, 17, 15, 0)


def test_supplement_pause_also_moves_the_legal_deadline_after_an_apology() -> None:
    dossier = processing_dossier(
        appointment_at=at(2026, 3, 20, 16, 0), original_appointment_at=at(2026, 3, 13, 16, 0)
    )
    with frozen(at(2026, 3, 10, 16, 0)):
        lifecycle.request_supplement(dossier.pk, AGENCY, documents=[{"note": "x"}], message="m")
    with frozen(at(2026, 3, 11, 8, 0)):  # 1 h + 1 h paused
        lifecycle.submit_supplement(dossier.pk, Actor.citizen(dossier.applicant))
    dossier.refresh_from_db()
    assert dossier.original_appointment_at == at(2026, 3, 16, 8, 0)
    assert dossier.appointment_at == at(2026, 3, 23, 8, 0)


def test_papers_uploaded_before_the_request_do_not_answer_it() -> None:
    dossier = processing_dossier(appointment_at=at(2026, 3, 13, 16, 0))
    with frozen(at(2026, 3, 10, 9, 0)):
        upload(dossier, "doc-1")
    with frozen(at(2026, 3, 10, 10, 0)):
        lifecycle.request_supplement(dossier.pk, AGENCY, documents=[{"code": "doc-1"}], message="m")
    with frozen(at(2026, 3, 11, 10, 0)), pytest.raises(Unprocessable) as caught:
        lifecycle.submit_supplement(dossier.pk, Actor.citizen(dossier.applicant))
    assert caught.value.details[0]["code"] == "supplement_incomplete"
    dossier.refresh_from_db()
    assert dossier.status == S.SUPPLEMENT_REQUESTED
    assert events(dossier) == ["dossier.supplement_requested"]


def test_citizen_submits_the_supplement_through_the_api(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = processing_dossier(agency, appointment_at=at(2030, 3, 13, 16, 0))
    response = agency_client.post(
        f"/api/v1/agency/dossiers/{dossier.code}/request-supplement",
        {"documents": [{"code": "doc-1", "note": "Bản chụp rõ"}], "message": "Bổ sung giúp"},
    )
    assert response.status_code == 200, response
    _, tokens = sign_in(dossier.applicant)
    citizen = ApiClient(token=tokens.access_token, language="en")
    path = f"/api/v1/dossiers/{dossier.pk}/supplement"
    early = citizen.post(path, {"message": "xong"})
    assert early.status_code == 422
    assert early.json()["details"][0]["code"] == "supplement_incomplete"
    assert early.json()["details"][0]["message"] == "Upload the requested papers first: doc-1."
    upload(dossier, "doc-1")
    response = citizen.post(path, {"message": "xong"})
    assert response.status_code == 200
    assert response.json()["status"] == S.PROCESSING
    assert response.json()["paused_at"] is None
    assert events(dossier) == ["dossier.supplement_requested", "dossier.supplement_submitted"]
    again = citizen.post(path, {"message": "xong"})
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    assert again.json()["details"]["current_status"] == S.PROCESSING


def test_someone_elses_supplement_is_not_found() -> None:
    dossier = make_dossier(make_user(password=None), status=S.SUPPLEMENT_REQUESTED)
    _, tokens = sign_in(make_user(password=None))
    response = ApiClient(token=tokens.access_token).post(
        f"/api/v1/dossiers/{dossier.pk}/supplement", {}
    )
    assert response.status_code == 404
    assert events(dossier) == []


# --- Withdraw ---------------------------------------------------------------------------------


def test_citizen_withdraws_before_acceptance() -> None:
    dossier = make_dossier(make_user(password=None), status=S.NEW)
    _, tokens = sign_in(dossier.applicant)
    response = ApiClient(token=tokens.access_token).post(
        f"/api/v1/dossiers/{dossier.pk}/withdraw", {"reason": "Nộp nhầm"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == S.WITHDRAWN
    assert response.json()["version"] == 2
    event = DossierEvent.objects.get(dossier=dossier)
    assert (event.type, event.actor_type, event.message) == (
        "dossier.withdrawn",
        "citizen",
        "Nộp nhầm",
    )
    assert event.actor_user_id == dossier.applicant_id


def test_withdraw_after_acceptance_is_an_invalid_transition() -> None:
    dossier = make_dossier(make_user(password=None), status=S.ACCEPTED)
    _, tokens = sign_in(dossier.applicant)
    response = ApiClient(token=tokens.access_token, language="en").post(
        f"/api/v1/dossiers/{dossier.pk}/withdraw", {}
    )
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": "This cannot be done while the dossier is “Accepted”.",
        "details": {
            "action": "withdraw",
            "actor": "citizen",
            "current_status": 2,
            "current_status_label": "Accepted",
        },
    }
    dossier.refresh_from_db()
    assert (dossier.status, dossier.version) == (S.ACCEPTED, 1)
    assert events(dossier) == []


def test_nobody_else_can_withdraw() -> None:
    dossier = make_dossier(make_user(password=None), status=S.NEW)
    _, tokens = sign_in(make_user(password=None))
    response = ApiClient(token=tokens.access_token).post(
        f"/api/v1/dossiers/{dossier.pk}/withdraw", {}
    )
    assert response.status_code == 404
    dossier.refresh_from_db()
    assert dossier.status == S.NEW


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"documents": [{"code": "doc-1", "note": ""}]}, "message", "missing"),
        (
            {"documents": [{"code": "doc-1", "note": ""}], "message": ""},
            "message",
            "string_too_short",
        ),
        (
            {"documents": [{"code": "", "note": " "}], "message": "m"},
            "documents.0",
            "empty_document",
        ),
    ],
)
def test_a_supplement_request_needs_a_message_and_named_documents(
    agency: Agency, agency_client: AgencyClient, body: dict, field: str, code: str
) -> None:
    """agency-api.md: `message` is required on request-supplement, unlike other actions."""
    dossier = processing_dossier(agency)
    response = agency_client.post(
        f"/api/v1/agency/dossiers/{dossier.code}/request-supplement", body
    )
    assert response.status_code == 422
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [(field, code)]
    dossier.refresh_from_db()
    assert dossier.status == Dossier.Status.PROCESSING
    assert events(dossier) == []
