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

import collections
import os
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
    register_device,
    second_device,
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


def _worker_talking_to(stack: Stack, port: int) -> int:
    """The index of the worker process with a TCP connection open to 127.0.0.1:`port`
    (the FCM fake): read from /proc, as `ss -tnp` does."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01":  # ESTABLISHED
                    inodes.add(fields[9])
    for index, worker in enumerate(stack.workers):
        if worker is None or not worker.running():
            continue
        fd_dir = f"/proc/{worker.pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return index
    raise LookupError("no worker talks to FCM")


def test_two_workers_never_send_a_push_twice_and_killing_one_mid_batch_loses_none(
    tmp_path: Path, e2e_template: str
) -> None:
    env = {
        **FAST_RETRIES,
        "FCM_CONCURRENCY": "2",  # a batch of 8 goes out in 4 slices of 2
        # One job at a time: the fan-out does not spread the 8 over side-by-side jobs
        # (it does up to WORKER_CONCURRENCY), so one job sends its slices in turn.
        "WORKER_CONCURRENCY": "1",
        "PUSH_CLAIM_LEASE_SECONDS": "3",
        "PUSH_RECOVERY_CRON": "* * * * * */2",
        "PUSH_STALLED_JOB_SECONDS": "5",
        "SMS_RESEND_SECONDS": "0",
        "SMS_PER_NUMBER_PER_HOUR": "50",
    }
    with running_stack(
        tmp_path, template=e2e_template, extra_env=env, webs=2, workers=2, s3=True
    ) as stack:
        assert stack._heartbeats() == 2
        app = sign_up(stack, PHONE)
        agency = Agency(stack, AGENCY_CODE, base_url=stack.web_urls[1])

        # Part one: both workers take jobs; each dossier's push goes out once.
        register_device(app, TOKEN)
        dossiers = [submit(app) for _ in range(4)]
        for _, code in dossiers:
            assert agency.post(f"/api/v1/agency/dossiers/{code}/accept", {}).status_code == 200
        wait_until(
            lambda: len(stack.fcm.accepted()) >= 4, timeout=60, interval=0.1, what="4 pushes"
        )
        wait_until(lambda: stack.fcm.in_flight == 0, timeout=10, what="quiet FCM")
        first = [(m["token"], m["data"]["dossier_id"]) for m in stack.fcm.accepted()]
        assert collections.Counter(first) == {(TOKEN, d): 1 for d, _ in dossiers}

        # Part two: eight devices, one batch; the worker with a slice in flight dies.
        tokens = [f"{TOKEN}-{n}" for n in range(7)]
        phones = [second_device(stack, PHONE) for _ in tokens]
        for phone, token in zip(phones, tokens, strict=True):
            register_device(phone, token)
        dossier_id, code = submit(app)
        stack.fcm.delay = 1.0  # slow enough for the kill to land while a slice is in flight
        assert agency.post(f"/api/v1/agency/dossiers/{code}/accept", {}).status_code == 200
        wait_until(
            lambda: stack.fcm.held == 2 and len(stack.fcm.accepted()) >= 6,
            timeout=30,
            interval=0.01,
            what="the second slice in flight",
        )
        victim = _worker_talking_to(stack, stack.fcm.port)
        stack.kill_worker_at(victim)
        survivor = stack.workers[1 - victim]
        assert survivor is not None
        assert survivor.running()

        everyone = [TOKEN, *tokens]

        def delivered_once() -> bool:
            pushes = [m for m in stack.fcm.accepted() if m["data"]["dossier_id"] == dossier_id]
            return collections.Counter(m["token"] for m in pushes) == dict.fromkeys(everyone, 1)

        wait_until(delivered_once, timeout=90, interval=0.2, what="every device's push")

        def settled() -> bool:
            rows = stack.sql(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE task_name = 'notifications.send_pushes' AND status IN ('todo', 'doing')"
            )
            return int(rows[0][0]) == 0 and stack.fcm.in_flight == 0

        wait_until(settled, timeout=60, interval=0.2, what="no send job left")
        left = stack.sql(
            "SELECT count(*) FROM notifications_delivery "
            "WHERE state IN ('created', 'temporary-failure')"
        )
        assert left == [(0,)]  # no delivery waits for a send that will not come
        received = collections.Counter(
            (m["token"], m["data"]["dossier_id"]) for m in stack.fcm.accepted()
        )
        assert set(received.values()) == {1}  # nothing, before or after the kill, twice
        assert len(received) == 4 + len(everyone)
        agency.close()
        for phone in (app, *phones):
            phone.close()
