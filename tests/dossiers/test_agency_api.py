"""The signed agency back-office API: signatures, skew, replays, ownership, actions."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.test.client import BOUNDARY, encode_multipart
from django.utils import timezone

from backend.idempotency import purge_expired
from backend.models import IdempotencyRecord
from dossiers.agency.credentials import create_credential, retire_previous_secret, rotate_credential
from dossiers.agency.signing import sign
from dossiers.models import Agency, AgencyCredential, Dossier, DossierEvent
from tests.conftest import ApiClient, make_user, sign_in
from tests.documents.pki import configure, make_pdf, sign_with
from tests.dossiers.conftest import AgencyClient
from tests.factories import make_dossier, make_procedure

pytestmark = pytest.mark.django_db

S = Dossier.Status


def new_dossier(agency: Agency, status: int = S.NEW, **extra: object) -> Dossier:
    return make_dossier(make_user(password=None), make_procedure(agency), status=status, **extra)


def url(dossier: Dossier, action: str) -> str:
    return f"/api/v1/agency/dossiers/{dossier.code}/{action}"


def post_raw(
    agency_client: AgencyClient, path: str, raw: bytes, content_type: str, event_id: str
) -> Any:
    """A signed POST of `raw` bytes under any content type."""
    stamp = str(int(time.time()))
    return ApiClient(language="en").request(
        "POST",
        path,
        raw=raw,
        content_type=content_type,
        headers={
            "X-Agency-Key": agency_client.credential.key_id,
            "X-Timestamp": stamp,
            "X-Event-Id": event_id,
            "X-Signature": sign(agency_client.secret, "POST", path, stamp, event_id, raw),
        },
    )


def events(dossier: Dossier) -> list[str]:
    return list(DossierEvent.objects.filter(dossier=dossier).values_list("type", flat=True))


# --- Signatures ---------------------------------------------------------------------------


def test_signed_accept_moves_the_dossier_and_issues_the_receipt(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = new_dossier(agency)
    response = agency_client.post(url(dossier, "accept"), {"receipt_number": "01/2026"})
    assert response.status_code == 200, response
    body = response.json()
    assert body["status"] == S.ACCEPTED
    assert body["version"] == 2
    dossier.refresh_from_db()
    assert dossier.status == S.ACCEPTED
    assert dossier.appointment_at is not None
    event = DossierEvent.objects.get(dossier=dossier)
    assert event.type == "dossier.accepted"
    assert event.actor_type == "agency"
    assert event.actor_label == f"{agency.code} ({agency_client.credential.key_id})"
    assert event.data["form"] == "01"
    assert event.data["receipt_number"] == "01/2026"
    assert dt.datetime.fromisoformat(event.data["appointment_at"]) == dossier.appointment_at


def test_action_by_id_works_like_by_code(agency: Agency, agency_client: AgencyClient) -> None:
    dossier = new_dossier(agency)
    response = agency_client.post(f"/api/v1/agency/dossiers/{dossier.pk}/refuse", {"reason": "x"})
    assert response.status_code == 200
    assert response.json()["status"] == S.REFUSED


def test_bad_signature_is_refused_and_nothing_changes(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = new_dossier(agency)
    response = agency_client.post(url(dossier, "accept"), {}, secret="not-the-secret")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    dossier.refresh_from_db()
    assert dossier.status == S.NEW
    assert events(dossier) == []
    assert IdempotencyRecord.objects.count() == 0


def test_tampered_body_is_refused(agency: Agency, agency_client: AgencyClient) -> None:
    dossier = new_dossier(agency)
    stamp = str(int(time.time()))
    signature = sign(agency_client.secret, "POST", url(dossier, "refuse"), stamp, "e1", b"{}")
    response = ApiClient().post(
        url(dossier, "refuse"),
        {"reason": "forged"},
        headers={
            "X-Agency-Key": agency_client.credential.key_id,
            "X-Timestamp": stamp,
            "X-Event-Id": "e1",
            "X-Signature": signature,
        },
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert events(dossier) == []


def test_unknown_key_is_an_invalid_signature(agency: Agency, agency_client: AgencyClient) -> None:
    dossier = new_dossier(agency)
    response = agency_client.post(url(dossier, "accept"), {}, key_id="ak_unknown")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"


@pytest.mark.parametrize("signature", ["é", "ａｂｃ", "0" * 63 + "é"])
@pytest.mark.parametrize("key_id", [None, "ak_unknown"])
def test_a_non_ascii_signature_is_an_invalid_signature_whatever_the_key(
    agency: Agency, agency_client: AgencyClient, signature: str, key_id: str | None
) -> None:
    # A known key and an unknown one answer alike: the answer tells nothing of the key.
    dossier = new_dossier(agency)
    response = agency_client.post(
        url(dossier, "accept"), {}, key_id=key_id, tamper={"X-Signature": signature}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert events(dossier) == []


def test_inactive_credential_is_refused(agency: Agency, agency_client: AgencyClient) -> None:
    dossier = new_dossier(agency)
    AgencyCredential.objects.filter(pk=agency_client.credential.pk).update(is_active=False)
    response = agency_client.post(url(dossier, "accept"), {})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"


def test_missing_headers_ask_for_a_signature(agency: Agency) -> None:
    dossier = new_dossier(agency)
    response = ApiClient().post(url(dossier, "accept"), {})
    assert response.status_code == 401
    assert response.json()["code"] == "signature_required"


@pytest.mark.parametrize(("offset", "expected"), [(300, 200), (-300, 200), (301, 401), (-301, 401)])
def test_timestamp_skew_boundary(
    agency: Agency, agency_client: AgencyClient, offset: int, expected: int
) -> None:
    dossier = new_dossier(agency)
    frozen = 1_790_000_000.0
    with mock.patch("dossiers.agency.signing.time.time", return_value=frozen):
        response = agency_client.post(url(dossier, "accept"), {}, timestamp=int(frozen) + offset)
    assert response.status_code == expected
    if expected == 401:
        assert response.json()["code"] == "stale_timestamp"
        assert events(dossier) == []


def test_skew_limit_is_a_setting(agency: Agency, agency_client: AgencyClient, settings) -> None:
    settings.AGENCY_SIGNATURE_MAX_SKEW_SECONDS = 10
    dossier = new_dossier(agency)
    response = agency_client.post(url(dossier, "accept"), {}, timestamp=int(time.time()) - 60)
    assert response.status_code == 401
    assert response.json()["code"] == "stale_timestamp"


def test_non_numeric_timestamp_is_stale(agency: Agency, agency_client: AgencyClient) -> None:
    dossier = new_dossier(agency)
    response = agency_client.post(url(dossier, "accept"), {}, tamper={"X-Timestamp": "yesterday"})
    assert response.status_code == 401
    assert response.json()["code"] == "stale_timestamp"


# --- Replays ----------------------------------------------------------------------------


def test_same_event_id_returns_the_first_result_without_a_second_transition(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = new_dossier(agency)
    first = agency_client.post(url(dossier, "accept"), {}, event_id="evt-1")
    second = agency_client.post(url(dossier, "accept"), {}, event_id="evt-1")
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["X-Event-Replayed"] == "true"
    assert "X-Event-Replayed" not in first.headers
    assert events(dossier) == ["dossier.accepted"]
    dossier.refresh_from_db()
    assert dossier.version == 2


def test_replayed_conflict_is_replayed_too(agency: Agency, agency_client: AgencyClient) -> None:
    dossier = new_dossier(agency, status=S.PROCESSING)
    first = agency_client.post(url(dossier, "accept"), {}, event_id="evt-2")
    assert first.status_code == 409
    assert first.json()["code"] == "invalid_transition"
    assert first.json()["details"]["current_status"] == S.PROCESSING
    again = agency_client.post(url(dossier, "accept"), {}, event_id="evt-2")
    assert again.status_code == 409
    assert again.json() == first.json()
    assert events(dossier) == []


def test_event_id_reused_for_another_request(agency: Agency, agency_client: AgencyClient) -> None:
    dossier = new_dossier(agency)
    agency_client.post(url(dossier, "accept"), {}, event_id="evt-3")
    response = agency_client.post(url(dossier, "refuse"), {"reason": "x"}, event_id="evt-3")
    assert response.status_code == 422
    assert response.json()["code"] == "event_id_reused"
    dossier.refresh_from_db()
    assert dossier.status == S.ACCEPTED


def test_event_ids_are_per_agency(
    agency: Agency, agency_client: AgencyClient, other_agency_client: AgencyClient
) -> None:
    mine = new_dossier(agency)
    theirs = new_dossier(other_agency_client.credential.agency)
    assert agency_client.post(url(mine, "accept"), {}, event_id="same").status_code == 200
    assert other_agency_client.post(url(theirs, "accept"), {}, event_id="same").status_code == 200
    assert events(theirs) == ["dossier.accepted"]


def test_answers_are_kept_for_the_retention_setting_then_purged(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    settings.AGENCY_REQUEST_RETENTION_DAYS = 2
    dossier = new_dossier(agency, status=S.PROCESSING)
    before = timezone.now()
    agency_client.post(url(dossier, "accept"), {}, event_id="evt-kept")
    record = IdempotencyRecord.objects.get(scope=f"agency:{agency.pk}", key="evt-kept")
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert (
        before + dt.timedelta(days=2) <= record.expires_at <= timezone.now() + dt.timedelta(days=2)
    )
    # Within the retention the answer is replayed; once past it, the purge job removes it.
    with mock.patch("django.utils.timezone.now", return_value=record.expires_at):
        assert purge_expired() == 0
    assert (
        agency_client.post(url(dossier, "accept"), {}, event_id="evt-kept").headers[
            "X-Event-Replayed"
        ]
        == "true"
    )
    later = record.expires_at + dt.timedelta(seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert purge_expired() == 1
    assert not IdempotencyRecord.objects.exists()


def test_an_event_id_past_its_retention_runs_again(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = new_dossier(agency, status=S.PROCESSING)
    first = agency_client.post(url(dossier, "accept"), {}, event_id="evt-old")
    assert first.status_code == 409
    IdempotencyRecord.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    Dossier.objects.filter(pk=dossier.pk).update(status=S.NEW)
    again = agency_client.post(url(dossier, "accept"), {}, event_id="evt-old")
    assert again.status_code == 200
    assert "X-Event-Replayed" not in again.headers
    assert events(dossier) == ["dossier.accepted"]


def test_event_id_is_required_on_actions(agency: Agency, agency_client: AgencyClient) -> None:
    dossier = new_dossier(agency)
    response = agency_client.post(url(dossier, "accept"), {}, event_id="")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_event_id"
    assert events(dossier) == []


# --- Ownership ------------------------------------------------------------------------------


def test_an_agency_cannot_touch_another_agencys_dossier(
    agency: Agency, other_agency_client: AgencyClient
) -> None:
    dossier = new_dossier(agency)
    for reference in (dossier.code, str(dossier.pk)):
        response = other_agency_client.post(f"/api/v1/agency/dossiers/{reference}/accept", {})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    dossier.refresh_from_db()
    assert dossier.status == S.NEW
    assert events(dossier) == []


def test_drafts_are_invisible_to_agencies(agency: Agency, agency_client: AgencyClient) -> None:
    draft = new_dossier(agency, status=S.DRAFT)
    response = agency_client.post(f"/api/v1/agency/dossiers/{draft.pk}/accept", {})
    assert response.status_code == 404


# --- Rotation ----------------------------------------------------------------------------


def test_rotation_keeps_two_secrets_until_the_grace_period_ends(
    agency: Agency, agency_client: AgencyClient
) -> None:
    old_secret = agency_client.secret
    new_secret = rotate_credential(agency_client.credential)
    assert new_secret != old_secret
    d1, d2, d3 = new_dossier(agency), new_dossier(agency), new_dossier(agency)
    assert agency_client.post(url(d1, "accept"), {}, secret=old_secret).status_code == 200
    assert agency_client.post(url(d2, "accept"), {}, secret=new_secret).status_code == 200
    AgencyCredential.objects.filter(pk=agency_client.credential.pk).update(
        previous_valid_until=timezone.now() - dt.timedelta(seconds=1)
    )
    response = agency_client.post(url(d3, "accept"), {}, secret=old_secret)
    assert response.status_code == 401
    assert agency_client.post(url(d3, "accept"), {}, secret=new_secret).status_code == 200


def test_retiring_the_previous_secret_ends_it_at_once(
    agency: Agency, agency_client: AgencyClient
) -> None:
    old_secret = agency_client.secret
    rotate_credential(agency_client.credential)
    retire_previous_secret(agency_client.credential)
    response = agency_client.post(url(new_dossier(agency), "accept"), {}, secret=old_secret)
    assert response.status_code == 401


def test_secret_is_stored_encrypted(agency: Agency) -> None:
    credential, secret = create_credential(agency)
    stored = AgencyCredential.objects.get(pk=credential.pk)
    assert secret not in stored.secret_encrypted
    assert len(secret) >= 40


# --- Driving a dossier from receipt to handover -------------------------------------------------


@pytest.fixture
def signed_pdf(settings) -> bytes:
    """A result the agency signed itself, under the test PKI the settings trust."""
    pki = configure(settings)
    return sign_with(pki, "agency", make_pdf())


def test_agency_drives_a_dossier_from_receipt_to_handover(
    agency: Agency, agency_client: AgencyClient, signed_pdf: bytes
) -> None:
    dossier = new_dossier(agency)
    steps = [
        ("accept", {}),
        ("request-payment", {"amount": 150_000, "description": "Lệ phí"}),
        ("start-processing", {"message": "Đã nộp lệ phí"}),
    ]
    for action, body in steps:
        response = agency_client.post(url(dossier, action), body)
        assert response.status_code == 200, (action, response)
    response = agency_client.post(
        url(dossier, "complete"),
        multipart={"message": "Kết quả", "result_file": ContentFile(signed_pdf, name="kq.pdf")},
    )
    assert response.status_code == 200, response
    response = agency_client.post(url(dossier, "hand-over"), {"method": "electronic"})
    assert response.status_code == 200
    assert response.json()["status"] == S.HANDED_OVER
    assert events(dossier) == [
        "dossier.accepted",
        "dossier.payment_requested",
        "dossier.processing_started",
        "dossier.completed",
        "dossier.handed_over",
    ]
    dossier.refresh_from_db()
    assert dossier.payment_amount == 150_000
    assert dossier.handover_method == "electronic"
    assert dossier.version == 6
    payment = DossierEvent.objects.get(dossier=dossier, type="dossier.payment_requested")
    assert payment.data == {
        "amount": 150_000,
        "currency": "VND",
        "description": "Lệ phí",
        "lines": [{"kind": "fee", "label": "Lệ phí", "amount": 150_000}],
    }
    # The citizen downloads the electronic result; someone else cannot.
    _, tokens = sign_in(dossier.applicant)
    download = ApiClient(token=tokens.access_token).get(f"/api/v1/dossiers/{dossier.pk}/result")
    assert download.status_code == 200
    assert b"".join(download.raw.streaming_content) == signed_pdf
    assert download.headers["Content-Type"] == "application/pdf"
    _, other = sign_in(make_user(password=None))
    response = ApiClient(token=other.access_token).get(f"/api/v1/dossiers/{dossier.pk}/result")
    assert response.status_code == 404


def test_complete_refuses_a_file_that_is_not_a_pdf(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = new_dossier(agency, status=S.PROCESSING)
    response = agency_client.post(
        url(dossier, "complete"),
        multipart={"result_file": ContentFile(b"<html>", name="kq.pdf")},
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["code"] == "not_a_pdf"
    assert events(dossier) == []


@pytest.mark.parametrize("valid_until", ["0", "1700000000", "2030-1-1"])
def test_complete_takes_a_result_expiry_only_as_a_calendar_date(
    agency: Agency, agency_client: AgencyClient, valid_until: str
) -> None:
    dossier = new_dossier(agency, status=S.PROCESSING)
    response = agency_client.post(url(dossier, "complete"), multipart={"valid_until": valid_until})
    assert response.status_code == 422, response
    assert [d["field"] for d in response.json()["details"]] == ["valid_until"]
    assert Dossier.objects.get(pk=dossier.pk).status == S.PROCESSING
    assert events(dossier) == []


# Django reads any body as a form, an empty one when it is not: "complete", whose
# fields are all optional, would complete the dossier on what was never sent.
@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"[]", "application/json"),
        (b'{"message": "ok"}', "application/json"),
        (b"message=ok", "text/plain"),
    ],
    ids=["json-array", "json", "text"],
)
def test_complete_refuses_a_body_that_is_not_a_form_and_changes_nothing(
    agency: Agency, agency_client: AgencyClient, raw: bytes, content_type: str
) -> None:
    path = complete_refused_as_no_form(agency, agency_client, raw, content_type)
    # The answer is final for this event id, as every agency answer is (replays.py)...
    replayed = post_raw(agency_client, path, raw, content_type, "e-1")
    assert replayed.status_code == 400
    assert replayed.headers["X-Event-Replayed"] == "true"
    # ... and a form under a new one completes the dossier.
    again = agency_client.post(path, multipart={"message": "ok"})
    assert again.status_code == 200, again
    assert again.json()["status"] == S.RESULT_READY


MALFORMED_MULTIPART = {
    "code": "malformed_multipart",
    "message": "The request body is not a valid multipart form.",
    "details": None,
}


def complete_refused_as_no_form(
    agency: Agency, agency_client: AgencyClient, raw: bytes, content_type: str
) -> str:
    """ "complete" of a dossier in processing sent `raw` under event e-1: 400
    `malformed_multipart`, the dossier unchanged and no event written. Its path."""
    dossier = new_dossier(agency, status=S.PROCESSING)
    before = (dossier.status, dossier.version)
    path = url(dossier, "complete")
    response = post_raw(agency_client, path, raw, content_type, "e-1")
    assert response.status_code == 400, response
    assert response.json() == MALFORMED_MULTIPART
    dossier.refresh_from_db()
    assert (dossier.status, dossier.version) == before
    assert events(dossier) == []
    return path


# A multipart body that is not closed (a cut upload, or no multipart at all) is refused
# as Django parses it, before the event id is claimed: as under the server, where a cut
# upload is a network failure, the same event id sent again with the whole body is read.
@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'{"message": "ok"}',
        f"--{BOUNDARY}\r\n".encode(),
        encode_multipart("other", {"message": "ok"}),
        encode_multipart(BOUNDARY, {"message": "ok"})[:-4],
    ],
    ids=["array", "object", "unclosed", "other-boundary", "cut"],
)
def test_complete_refuses_a_multipart_body_not_closed_and_reads_the_event_id_again(
    agency: Agency, agency_client: AgencyClient, raw: bytes
) -> None:
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    path = complete_refused_as_no_form(agency, agency_client, raw, content_type)
    whole = post_raw(
        agency_client, path, encode_multipart(BOUNDARY, {"message": "ok"}), content_type, "e-1"
    )
    assert whole.status_code == 200, whole
    assert "X-Event-Replayed" not in whole.headers
    assert whole.json()["status"] == S.RESULT_READY


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"", f"multipart/form-data; boundary={BOUNDARY}"),  # no body: no fields
        (f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"),
        (b"", "application/x-www-form-urlencoded"),
        (b"message=ok", "application/x-www-form-urlencoded"),
    ],
    ids=["no-body", "no-parts", "urlencoded-empty", "urlencoded"],
)
def test_complete_still_takes_an_empty_or_urlencoded_form(
    agency: Agency, agency_client: AgencyClient, raw: bytes, content_type: str
) -> None:
    dossier = new_dossier(agency, status=S.PROCESSING)
    path = url(dossier, "complete")
    response = post_raw(agency_client, path, raw, content_type, "e-2")
    assert response.status_code == 200, response
    assert events(dossier) == ["dossier.completed"]


@pytest.mark.parametrize("filename", [".", "..", "kq/"])
def test_complete_with_a_result_file_django_would_drop_for_its_name_is_refused(
    agency: Agency, agency_client: AgencyClient, filename: str
) -> None:
    """Django skips a file part named `.` or `..` without a word: "complete" read no
    result file and completed the dossier without the one the agency sent."""
    dossier = new_dossier(agency, status=S.PROCESSING)
    raw = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="result_file"; '
        f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\r\n'
        f"--{BOUNDARY}--\r\n"
    ).encode()
    response = post_raw(
        agency_client,
        url(dossier, "complete"),
        raw,
        f"multipart/form-data; boundary={BOUNDARY}",
        "e-3",
    )
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": "result_file",
            "location": "file",
            "code": "filename_invalid",
            "message": "The file name is not valid (such as “.”, “..” or a folder).",
        }
    ]
    dossier.refresh_from_db()
    assert dossier.status == S.PROCESSING
    assert events(dossier) == []


@pytest.mark.parametrize(("extra", "expected"), [(0, 200), (1, 413)])
def test_result_file_size_limit(
    agency: Agency, agency_client: AgencyClient, settings, extra: int, expected: int
) -> None:
    configure(settings, agency.code)
    pdf = make_pdf()
    settings.RESULT_FILE_MAX_BYTES = len(pdf) + 10
    dossier = new_dossier(agency, status=S.PROCESSING)
    content = pdf + b" " * (10 + extra)
    response = agency_client.post(
        url(dossier, "complete"),
        multipart={"result_file": ContentFile(content, name="kq.pdf"), "signing": "server"},
    )
    assert response.status_code == expected
    if expected == 413:
        assert response.json()["code"] == "result_file_too_large"
        assert events(dossier) == []


def test_multipart_signature_covers_the_raw_body(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = new_dossier(agency, status=S.PROCESSING)
    raw = encode_multipart(BOUNDARY, {"message": "ok"})
    stamp = str(int(time.time()))
    signature = sign(agency_client.secret, "POST", url(dossier, "complete"), stamp, "m1", raw)
    tampered = raw.replace(b"ok", b"ko")
    response = ApiClient().request(
        "POST",
        url(dossier, "complete"),
        raw=tampered,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        headers={
            "X-Agency-Key": agency_client.credential.key_id,
            "X-Timestamp": stamp,
            "X-Event-Id": "m1",
            "X-Signature": signature,
        },
    )
    assert response.status_code == 401
    assert events(dossier) == []


def test_refuse_and_stop_keep_the_reason(agency: Agency, agency_client: AgencyClient) -> None:
    refused = new_dossier(agency)
    stopped = new_dossier(agency, status=S.PROCESSING)
    assert (
        agency_client.post(url(refused, "refuse"), {"reason": "Sai thẩm quyền"}).status_code == 200
    )
    assert (
        agency_client.post(url(stopped, "stop"), {"reason": "Công dân đề nghị"}).status_code == 200
    )
    refusal = DossierEvent.objects.get(dossier=refused)
    assert (refusal.type, refusal.message, refusal.data) == (
        "dossier.refused",
        "Sai thẩm quyền",
        {"form": "03", "reason": "Sai thẩm quyền"},
    )
    stop = DossierEvent.objects.get(dossier=stopped)
    assert (stop.type, stop.status_after, stop.message) == (
        "dossier.stopped",
        8,
        "Công dân đề nghị",
    )


def test_empty_reason_is_a_validation_error(agency: Agency, agency_client: AgencyClient) -> None:
    dossier = new_dossier(agency)
    response = agency_client.post(url(dossier, "refuse"), {"reason": ""})
    assert response.status_code == 422
    assert events(dossier) == []
    record = IdempotencyRecord.objects.get()
    assert (record.scope, record.response_status) == (f"agency:{agency.pk}", 422)


def test_payment_request_carries_fee_lines_that_add_up(agency, agency_client) -> None:
    dossier = new_dossier(agency, status=S.PROCESSING)
    lines = [
        {"kind": "fee", "label": "Phí thẩm định", "amount": 100_000},
        {"kind": "charge", "label": "Lệ phí", "amount": 30_000},
        {"kind": "postage", "label": "Cước bưu chính", "amount": 20_000},
    ]
    wrong = agency_client.post(url(dossier, "request-payment"), {"amount": 160_000, "lines": lines})
    assert wrong.status_code == 422
    assert wrong.json()["details"][0]["code"] == "lines_total_mismatch"
    dossier.refresh_from_db()
    assert dossier.status == S.PROCESSING
    bad_kind = agency_client.post(
        url(dossier, "request-payment"),
        {"amount": 10, "lines": [{"kind": "tip", "amount": 10}]},
        event_id="bad-kind",
    )
    assert bad_kind.status_code == 422

    response = agency_client.post(
        url(dossier, "request-payment"), {"amount": 150_000, "lines": lines}, event_id="ok"
    )

    assert response.status_code == 200, response
    event = DossierEvent.objects.get(dossier=dossier, type="dossier.payment_requested")
    assert event.data["lines"] == lines


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 150_000.0}, "amount"),
        ({"amount": "150000"}, "amount"),
        ({"amount": 10, "lines": [{"kind": "fee", "amount": 10.0}]}, "lines.0.amount"),
    ],
    ids=["float", "text", "line"],
)
def test_an_amount_that_is_no_json_integer_is_refused_and_nothing_requested(
    agency: Agency, agency_client: AgencyClient, body: dict[str, Any], field: str
) -> None:
    """A signed body is read as its signer's JSON typed it: `150000.0` and `"150000"`
    are no VND amount (pydantic read both as 150000)."""
    dossier = new_dossier(agency, status=S.PROCESSING)
    response = agency_client.post(url(dossier, "request-payment"), body)
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": field,
            "location": "body",
            "code": "int_type",
            "message": "Phải là số nguyên.",
        }
    ]
    assert events(dossier) == []
    dossier.refresh_from_db()
    assert dossier.status == S.PROCESSING


# --- Appointments the agency gives ----------------------------------------------------------


@pytest.mark.parametrize(
    ("appointment_at", "code"),
    [
        (0, "value_error"),  # a bare number pydantic would read as 1970
        (1.5, "value_error"),
        ("2000-01-01T00:00:00Z", "appointment_in_past"),
        ("0001-01-01T00:00:00+14:00", "appointment_in_past"),  # before year 1 in UTC
        ("2036-01-01T10:00:00+07:00", "appointment_too_far"),
        ("9999-12-31T23:59:59-12:00", "appointment_too_far"),  # beyond 9999 in UTC
        ("2026-03-10T08:00:00", "naive_datetime"),
    ],
)
def test_accept_refuses_an_appointment_it_cannot_keep(
    agency: Agency, agency_client: AgencyClient, appointment_at: object, code: str
) -> None:
    dossier = new_dossier(agency)
    response = agency_client.post(url(dossier, "accept"), {"appointment_at": appointment_at})
    assert response.status_code == 422, response
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [
        ("appointment_at", code)
    ]
    dossier.refresh_from_db()
    assert (dossier.status, dossier.appointment_at) == (S.NEW, None)
    assert events(dossier) == []


@pytest.mark.parametrize(
    ("days_ahead", "accepted"),
    [(729, True), (730, True), (731, False)],
)
def test_the_appointment_horizon_is_the_setting(
    agency: Agency, agency_client: AgencyClient, days_ahead: int, accepted: bool
) -> None:
    dossier = new_dossier(agency)
    # A minute's margin either side of the boundary: the request takes time to run.
    margin = dt.timedelta(minutes=-1 if days_ahead == 730 else 0)
    at = timezone.now() + dt.timedelta(days=days_ahead) + margin
    response = agency_client.post(url(dossier, "accept"), {"appointment_at": at.isoformat()})
    assert (response.status_code == 200) is accepted, response


def test_an_apology_to_a_date_beyond_the_horizon_is_refused(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = new_dossier(agency)
    assert agency_client.post(url(dossier, "accept"), {}).status_code == 200
    before = Dossier.objects.get(pk=dossier.pk).appointment_at
    response = agency_client.post(
        url(dossier, "apologise"),
        {"new_appointment_at": "9999-12-31T23:59:59-12:00", "reason": "Thiếu cán bộ"},
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["code"] == "appointment_too_far"
    assert Dossier.objects.get(pk=dossier.pk).appointment_at == before


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("from=9999-12-30&to=9999-12-31", "out_of_range"),
        ("from=2026-01-01T00:00:00&to=2026-01-02", "value_error"),
        ("from=0&to=2026-01-02", "value_error"),
    ],
)
def test_performance_refuses_dates_it_cannot_count(
    agency_client: AgencyClient, query: str, code: str
) -> None:
    response = agency_client.get(f"/api/v1/agency/performance?{query}")
    assert response.status_code == 422, response
    assert response.json()["details"][0]["code"] == code
