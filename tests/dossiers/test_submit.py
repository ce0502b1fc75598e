"""Submission: full validation, dossier code, appointment date, first event, once only."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from django.db import connection
from django.utils import timezone

from backend.models import IdempotencyRecord
from dossiers.actions import next_dossier_code, submit_dossier
from dossiers.deadlines import appointment_for
from dossiers.models import Agency, Dossier, DossierCodeSequence, DossierEvent, Procedure
from tests.dossiers.conftest import RICH_FORM, VALID_FORM, attach, client_for
from tests.factories import make_agency, make_dossier, make_procedure

URL = "/api/v1/dossiers"


def complete_draft(procedure: Procedure, **extra) -> Dossier:
    dossier = make_dossier(procedure=procedure, form_data=VALID_FORM, **extra)
    attach(dossier, "doc-1", 2)
    return dossier


@pytest.mark.django_db
def test_submit_gives_code_appointment_status_and_first_event(procedure: Procedure) -> None:
    dossier = complete_draft(procedure)
    before = timezone.now()
    response = client_for(dossier.applicant).post(f"{URL}/{dossier.id}/submit")
    after = timezone.now()
    assert response.status_code == 200
    body = response.json()
    dossier.refresh_from_db()
    today = timezone.localtime(dossier.submitted_at).date()  # business time: Hà Nội
    assert before <= dossier.submitted_at <= after
    assert dossier.code == f"HN-TEST-{today:%y%m%d}-0001"
    assert body["code"] == dossier.code
    assert (dossier.status, dossier.channel, dossier.version) == (1, 2, 2)
    assert body["status"] == 1
    assert body["status_label"] == "Mới đăng ký"
    assert dossier.appointment_at == appointment_for(procedure, dossier.submitted_at)
    assert dt.datetime.fromisoformat(body["appointment_at"]) == dossier.appointment_at
    # The form is stored normalised.
    assert dossier.form_data["phone"] == "+84912345678"
    (event,) = DossierEvent.objects.filter(dossier=dossier)
    assert (event.seq, event.type, event.status_before, event.status_after) == (
        1,
        "dossier.submitted",
        0,
        1,
    )
    assert (event.actor_type, event.actor_user) == ("citizen", dossier.applicant)
    assert event.data == {
        "code": dossier.code,
        "channel": 2,
        "appointment_at": event.data["appointment_at"],
    }
    assert dt.datetime.fromisoformat(event.data["appointment_at"]) == dossier.appointment_at


@pytest.mark.django_db
def test_incomplete_dossier_is_422_listing_fields_and_documents(procedure: Procedure) -> None:
    dossier = make_dossier(
        procedure=procedure,
        form_data={**VALID_FORM, "phone": "0243825353", "full_name": None},
    )
    dossier.form_data.pop("full_name")
    dossier.save()
    attach(dossier, "doc-1", 1)
    attach(dossier, "doc-2", 1)
    response = client_for(dossier.applicant).post(f"{URL}/{dossier.id}/submit")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "dossier_incomplete"
    assert [(d["field"], d["location"], d["code"]) for d in body["details"]] == [
        ("form.full_name", "body", "required"),
        ("form.phone", "body", "invalid_phone"),
        ("documents.doc-1", "body", "document_missing"),
    ]
    assert body["details"][2]["required"] == 2
    assert body["details"][2]["present"] == 1
    dossier.refresh_from_db()
    assert (dossier.status, dossier.code, dossier.submitted_at, dossier.version) == (
        0,
        None,
        None,
        1,
    )
    assert DossierEvent.objects.count() == 0
    assert DossierCodeSequence.objects.count() == 0


@pytest.mark.django_db
def test_optional_documents_may_be_missing(procedure: Procedure) -> None:
    dossier = complete_draft(procedure)
    assert client_for(dossier.applicant).post(f"{URL}/{dossier.id}/submit").status_code == 200


@pytest.mark.django_db
def test_second_submit_is_409_not_a_draft(procedure: Procedure) -> None:
    dossier = complete_draft(procedure)
    client = client_for(dossier.applicant)
    assert client.post(f"{URL}/{dossier.id}/submit").status_code == 200
    again = client.post(f"{URL}/{dossier.id}/submit")
    assert again.status_code == 409
    assert again.json()["code"] == "not_a_draft"
    assert DossierEvent.objects.count() == 1
    assert DossierCodeSequence.objects.get().last_number == 1


@pytest.mark.django_db
def test_retried_submit_with_the_same_key_replays_the_first_answer(procedure: Procedure) -> None:
    dossier = complete_draft(procedure)
    client = client_for(dossier.applicant)
    key = {"Idempotency-Key": "submit-7d0c"}
    first = client.post(f"{URL}/{dossier.id}/submit", headers=key)
    retry = client.post(f"{URL}/{dossier.id}/submit", headers=key)
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert DossierEvent.objects.count() == 1
    assert Dossier.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db
def test_inactive_procedure_cannot_be_submitted(procedure: Procedure) -> None:
    dossier = complete_draft(procedure)
    Procedure.objects.filter(pk=procedure.pk).update(is_active=False)
    response = client_for(dossier.applicant).post(f"{URL}/{dossier.id}/submit")
    assert response.status_code == 409
    assert response.json()["code"] == "procedure_unavailable"
    assert Dossier.objects.get().status == 0


@pytest.mark.django_db
def test_code_uses_the_business_date_in_vietnam() -> None:
    agency = make_agency("HN-X")
    # 23:30 UTC on 24 Nov is 06:30 on 25 Nov in Hà Nội.
    late = dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC)
    assert next_dossier_code(agency, late) == "HN-X-261125-0001"
    early = dt.datetime(2026, 11, 24, 16, 59, tzinfo=dt.UTC)  # 23:59 on the 24th
    assert next_dossier_code(agency, early) == "HN-X-261124-0001"
    assert next_dossier_code(agency, late) == "HN-X-261125-0002"


@pytest.mark.django_db
def test_sequence_is_per_agency_and_restarts_daily() -> None:
    first, second = make_agency("A1"), make_agency("A2")
    day = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)
    assert next_dossier_code(first, day) == "A1-260302-0001"
    assert next_dossier_code(first, day) == "A1-260302-0002"
    assert next_dossier_code(second, day) == "A2-260302-0001"
    assert next_dossier_code(first, day + dt.timedelta(days=1)) == "A1-260303-0001"


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_submissions_get_consecutive_distinct_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One business day for all twenty, even if Vietnam's midnight passes meanwhile.
    frozen = timezone.now()
    monkeypatch.setattr("django.utils.timezone.now", lambda: frozen)
    agency = Agency.objects.create(code="HN-CONC", name="Phường thử", level="commune")
    procedure = make_procedure(agency, documents=1, form_spec=RICH_FORM)
    dossiers = [make_dossier(procedure=procedure, form_data=VALID_FORM) for _ in range(20)]
    for dossier in dossiers:
        attach(dossier, "doc-1", 1)
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def submit(dossier: Dossier) -> None:
        try:
            barrier.wait(timeout=10)
            submit_dossier(dossier.applicant, dossier.id)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(d,)) for d in dossiers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    codes = sorted(Dossier.objects.values_list("code", flat=True))
    prefix = codes[0][: -len("0001")]
    assert re.fullmatch(r"HN-CONC-\d{6}-", prefix)
    assert codes == [f"{prefix}{n:04d}" for n in range(1, 21)]
    assert DossierEvent.objects.filter(type="dossier.submitted").count() == 20
