"""Many processes: two web and two worker processes against one PostgreSQL, one
Redis and one S3-speaking object store (moto's server, its own process), as
several hosts behind a load balancer run.

- a socket on web B gets, in order and without gaps, the events of actions taken
  through web A and through the agency API on web B; files uploaded through web A
  are served by web B (one object store); killing web B loses none of the
  socket's events: the app resumes on web A with its last event id;
- two workers never send a push twice, and killing the one with a push batch in
  flight loses no push: the other one's recovery finishes the batch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.harness import wait_until
from tests.dossiers.attachments import samples
from tests.e2e.clients import (
    AGENCY_CODE,
    Agency,
    EventStream,
    MobileApp,
    draft,
    pay_submission_fee,
    sign_up,
)
from tests.e2e.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

PHONE = "+84987650021"
TOKEN = "fcm-e2e-multinode-" + "m" * 40
FAST_RETRIES = {
    "PUSH_RETRY_BASE_SECONDS": "1",
    "PUSH_RETRY_MAX_SECONDS": "2",
    "PUSH_QUOTA_MIN_WAIT_SECONDS": "1",
}


def logged_events(stack: Stack, dossier_ids: list[str]) -> list[tuple[int, str, str]]:
    rows = stack.sql(
        "SELECT id, type, dossier_id::text FROM tracking_dossierevent "
        "WHERE dossier_id::text = ANY(%s) ORDER BY id",
        (dossier_ids,),
    )
    return [(int(event_id), str(kind), str(dossier)) for event_id, kind, dossier in rows]


def streamed(stream: EventStream) -> list[tuple[int, str, str]]:
    return [(int(e["id"]), e["event_type"], e["dossier_id"]) for e in stream.events()]


def same_citizen_on(stack: Stack, app: MobileApp, base_url: str) -> MobileApp:
    """The same signed-in phone, its requests routed to another web process."""
    other = MobileApp(stack, device_id=app.device_id, base_url=base_url)
    other.token = app.token
    return other


def submit(app: MobileApp) -> tuple[str, str]:
    dossier_id = draft(app)
    pay_submission_fee(app, dossier_id)
    response = app.post(f"/api/v1/dossiers/{dossier_id}/submit")
    assert response.status_code == 200, response.text
    return dossier_id, str(response.json()["code"])


def test_a_socket_on_web_b_gets_every_event_in_order_and_resumes_on_web_a_when_b_dies(
    tmp_path: Path, e2e_template: str
) -> None:
    with running_stack(tmp_path, template=e2e_template, webs=2, workers=2, s3=True) as stack:
        web_a, web_b = stack.web_urls
        on_a = sign_up(stack, PHONE)  # the app's REST calls land on web A
        on_b = same_citizen_on(stack, on_a, web_b)  # its socket on web B
        stream = EventStream(on_b)
        stream.open()
        agency_b = Agency(stack, AGENCY_CODE, base_url=web_b)

        # A file uploaded through web A is in the shared store and served by web B.
        dossier_id = draft(on_a)
        pdf = samples.pdf_bytes()
        uploaded = on_a.post(
            f"/api/v1/dossiers/{dossier_id}/attachments",
            files={"file": ("divorce.pdf", pdf, "application/pdf")},
            data={"document_code": "divorce-paper"},
        )
        assert uploaded.status_code == 201, uploaded.text
        attachment_id = uploaded.json()["id"]
        assert stack.s3 is not None
        keys = stack.s3.keys(stack.s3_bucket)
        assert len(keys) == 1
        assert keys[0].startswith("attachments/")
        served = on_b.get(f"/api/v1/dossiers/{dossier_id}/attachments/{attachment_id}/download")
        assert served.status_code == 200, served.text
        assert (
            served.content
            == stack.s3.client().get_object(Bucket=stack.s3_bucket, Key=keys[0])["Body"].read()
        )

        # Actions through web A (the citizen) and through the agency API on web B.
        pay_submission_fee(on_a, dossier_id)
        submitted = on_a.post(f"/api/v1/dossiers/{dossier_id}/submit")
        assert submitted.status_code == 200, submitted.text
        code = str(submitted.json()["code"])
        second_id, second_code = submit(on_a)
        for dossier_code in (code, second_code):
            accepted = agency_b.post(f"/api/v1/agency/dossiers/{dossier_code}/accept", {})
            assert accepted.status_code == 200, accepted.text
        dossiers = [dossier_id, second_id]
        wait_until(lambda: len(stream.events()) >= 4, timeout=30, interval=0.1, what="four events")
        assert streamed(stream) == logged_events(stack, dossiers)
        assert [kind for _, kind, _ in streamed(stream)] == [
            "dossier.submitted",
            "dossier.submitted",
            "dossier.accepted",
            "dossier.accepted",
        ]

        # Web B dies (SIGKILL: no close frame). The app resumes on web A with its last
        # event id; what happened meanwhile arrives, nothing twice, nothing lost.
        stack.kill_web(1)
        wait_until(lambda: stream.closed, timeout=30, what="the socket on web B to drop")
        agency_a = Agency(stack, AGENCY_CODE, base_url=web_a)
        third_id, third_code = submit(on_a)
        moved = agency_a.post(f"/api/v1/agency/dossiers/{third_code}/accept", {})
        assert moved.status_code == 200, moved.text
        on_b.use(web_a)
        assert stream.reconnect() == 0
        dossiers.append(third_id)
        wait_until(lambda: len(stream.events()) >= 6, timeout=30, interval=0.1, what="six events")
        logged = logged_events(stack, dossiers)
        assert streamed(stream) == logged
        assert len(logged) == 6
        ids = [event_id for event_id, _, _ in streamed(stream)]
        assert len(set(ids)) == len(ids)
        stream.close()
        for client in (on_a, on_b, agency_a, agency_b):
            client.close()
