"""GET /api/v1/dossiers/{id}/timeline."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from auth.models import Membership
from dossiers.models import Dossier, DossierEvent
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_dossier, make_organisation
from tests.tracking.conftest import add_event
from tracking.stream import iso_time

pytestmark = pytest.mark.django_db

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def url(dossier: Dossier) -> str:
    return f"/api/v1/dossiers/{dossier.pk}/timeline"


@pytest.fixture
def dossier(user) -> Dossier:
    return make_dossier(user, status=Dossier.Status.NEW)


def client_for(user, language: str = "en") -> ApiClient:
    _, tokens = sign_in(user)
    return ApiClient(tokens.access_token, language=language)


def test_timeline_lists_every_step_with_text_message_and_documents(user, dossier):
    submitted = add_event(dossier, "dossier.submitted", status_after=1, actor_type="citizen")
    accepted = add_event(dossier, "dossier.accepted", status_after=2)
    supplement = add_event(
        dossier,
        "dossier.supplement_requested",
        status_after=5,
        message="Ảnh CCCD bị mờ, vui lòng chụp lại.",
        data={"documents": [{"code": "doc-1", "name": "CCCD", "reason": "blurred"}, "doc-2"]},
    )

    body = client_for(user).get(url(dossier)).json()

    assert [step["event_id"] for step in body["steps"]] == [
        submitted.id,
        accepted.id,
        supplement.id,
    ]
    assert body["steps"][2] == {
        "event_id": supplement.id,
        "time": iso_time(supplement.created_at),
        "event_type": "dossier.supplement_requested",
        "actor": "agency",
        "status": 5,
        "status_before": 2,
        "status_label": "Supplement requested",
        "text": "The agency asks you to add or correct documents.",
        "message": "Ảnh CCCD bị mờ, vui lòng chụp lại.",
        "documents_requested": [
            {"code": "doc-1", "name": "CCCD", "note": "blurred"},
            {"code": "doc-2", "name": "doc-2", "note": ""},
        ],
        "documents_issued": [
            {
                "code": "form_02",
                "name": "Request to add or correct documents (form 02)",
                "note": "",
            }
        ],
        "data": {"documents": [{"code": "doc-1", "name": "CCCD", "reason": "blurred"}, "doc-2"]},
    }
    assert body["steps"][1]["documents_issued"] == [
        {"code": "form_01", "name": "Receipt and appointment slip (form 01)", "note": ""}
    ]


def test_timeline_texts_are_vietnamese_by_default(user, dossier):
    add_event(dossier, "dossier.accepted", status_after=2)

    body = client_for(user, language="vi").get(url(dossier)).json()

    assert body["status_label"] == "Được tiếp nhận"
    assert body["steps"][0]["text"] == "Cơ quan đã tiếp nhận hồ sơ và cấp giấy tiếp nhận."
    assert body["progress"][0]["label"] == "Mới đăng ký"


def test_result_documents_and_handover_method_come_from_event_data(user, dossier):
    add_event(
        dossier,
        "dossier.completed",
        status_after=9,
        data={"result_files": [{"code": "gcn", "name": "Giấy chứng nhận"}]},
    )
    add_event(dossier, "dossier.handed_over", status_after=10, data={"method": "post"})

    steps = client_for(user).get(url(dossier)).json()["steps"]

    assert steps[0]["documents_issued"] == [{"code": "gcn", "name": "Giấy chứng nhận", "note": ""}]
    assert steps[1]["text"] == "The result was sent by post."


def test_progress_marks_the_usual_steps_done_with_their_times(user, dossier):
    submitted = add_event(dossier, "dossier.submitted", status_after=1, actor_type="citizen")
    accepted = add_event(dossier, "dossier.accepted", status_after=2)
    started = add_event(dossier, "dossier.processing_started", status_after=4)

    progress = client_for(user).get(url(dossier)).json()["progress"]

    def iso(event: DossierEvent) -> str:
        return iso_time(event.created_at)

    assert progress == [
        {"key": "submitted", "label": "Submitted", "done": True, "time": iso(submitted)},
        {"key": "accepted", "label": "Accepted", "done": True, "time": iso(accepted)},
        {"key": "processing", "label": "Processing", "done": True, "time": iso(started)},
        {"key": "result_ready", "label": "Result ready", "done": False, "time": None},
        {"key": "handed_over", "label": "Result handed over", "done": False, "time": None},
    ]


def test_a_later_step_implies_the_earlier_ones(user):
    dossier = make_dossier(user, status=Dossier.Status.HANDED_OVER)
    add_event(dossier, "dossier.handed_over", status_after=10, data={"method": "in_person"})

    progress = client_for(user).get(url(dossier)).json()["progress"]

    assert [item["done"] for item in progress] == [True, True, True, True, True]
    assert [item["time"] is None for item in progress] == [True, True, True, True, False]


def test_paused_dossier_keeps_the_working_time_left_when_it_paused(user):
    dossier = make_dossier(
        user,
        status=Dossier.Status.SUPPLEMENT_REQUESTED,
        paused_at=dt.datetime(2026, 12, 7, 8, 0, tzinfo=HCM),  # a Monday
        appointment_at=dt.datetime(2026, 12, 8, 8, 0, tzinfo=HCM),
    )

    body = client_for(user).get(url(dossier)).json()

    # Monday 8:00-11:30 and 13:30-17:00, Tuesday 7:00-8:00: 8 working hours.
    assert body["working_seconds_remaining"] == 8 * 3600
    assert body["working_days_remaining"] == 1.0
    assert body["paused"] is True
    assert body["paused_since"] == "2026-12-07T01:00:00.000Z"
    assert body["appointment_at"] == "2026-12-08T01:00:00.000Z"
    assert body["overdue"] is False


def test_an_appointment_beyond_the_calendars_horizon_counts_no_working_time(user):
    # Given before the agency API bounded appointments (AGENCY_APPOINTMENT_MAX_DAYS):
    # the timeline still answers, without a count it cannot make.
    dossier = make_dossier(
        user,
        status=Dossier.Status.PROCESSING,
        appointment_at=dt.datetime(9999, 12, 31, 16, 0, tzinfo=dt.UTC),
    )

    response = client_for(user).get(url(dossier))

    assert response.status_code == 200
    body = response.json()
    assert body["appointment_at"] == "9999-12-31T16:00:00.000Z"
    assert (body["working_seconds_remaining"], body["working_days_remaining"]) == (None, None)
    assert body["overdue"] is False


def test_active_dossier_past_its_appointment_is_overdue(user):
    dossier = make_dossier(
        user,
        status=Dossier.Status.PROCESSING,
        appointment_at=timezone.now() - dt.timedelta(days=10),
    )

    body = client_for(user).get(url(dossier)).json()

    assert body["overdue"] is True
    assert body["working_seconds_remaining"] == 0
    assert body["paused"] is False


def test_finished_dossier_has_no_clock_and_says_whether_it_was_late(user):
    appointment = timezone.now() - dt.timedelta(days=3)
    dossier = make_dossier(
        user,
        status=Dossier.Status.RESULT_READY,
        appointment_at=appointment,
        finished_at=appointment + dt.timedelta(hours=1),
    )

    body = client_for(user).get(url(dossier)).json()

    assert body["working_seconds_remaining"] is None
    assert body["overdue"] is False
    assert body["finished_late"] is True


def test_someone_elses_timeline_is_404(user_api):
    other = make_dossier(make_user(), status=Dossier.Status.NEW)
    response = user_api.get(url(other))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_organisation_member_sees_the_organisations_dossier(user):
    owner = make_user()
    company = make_organisation(owner)
    Membership.objects.create(organisation=company, user=user)
    dossier = make_dossier(owner, organisation=company, status=Dossier.Status.NEW)

    assert client_for(user).get(url(dossier)).status_code == 200


def test_timeline_needs_a_signed_in_user(api, dossier):
    assert api.get(url(dossier)).status_code == 401
