"""Faults on the real stack: FCM outages, a killed worker, Redis down, database cut off.

Each test starts its own stack (a copy of the migrated template database, its
own Redis, fakes and processes) so a fault never leaks into another test.
"""

from __future__ import annotations

import collections
import signal
from pathlib import Path

import httpx
import pytest

from fakes.fcm import Outcome
from fakes.harness import wait_until
from tests.e2e.clients import (
    AGENCY_CODE,
    PASSWORD,
    Agency,
    EventStream,
    MobileApp,
    draft,
    pay_submission_fee,
    pushes_to,
    register_device,
    second_device,
    sign_up,
    sms_code,
    submitted,
)
from tests.e2e.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

PHONE = "+84987650002"
TOKEN = "fcm-e2e-faults-" + "y" * 40
FAST_RETRIES = {
    "PUSH_RETRY_BASE_SECONDS": "1",
    "PUSH_RETRY_MAX_SECONDS": "2",
    "PUSH_QUOTA_MIN_WAIT_SECONDS": "1",
}


def delivery_states(stack: Stack) -> list[tuple[str, int]]:
    return [
        (state, attempts)
        for state, attempts in stack.sql(
            "SELECT state, attempts FROM notifications_delivery ORDER BY id"
        )
    ]


def send_jobs_open(stack: Stack) -> int:
    rows = stack.sql(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'notifications.send_pushes' "
        "AND status IN ('todo', 'doing')"
    )
    return int(rows[0][0])


def all_delivered(stack: Stack, count: int) -> bool:
    states = delivery_states(stack)
    return (
        len(states) == count
        and all(state == "delivered" for state, _ in states)
        and send_jobs_open(stack) == 0
    )


def verified_at(stack: Stack, phone: str) -> list[tuple[object, ...]]:
    return stack.sql("SELECT phone_verified_at FROM accounts_user WHERE phone = %s", (phone,))


def accept_all(agency: Agency, codes: list[str]) -> None:
    for code in codes:
        response = agency.post(f"/api/v1/agency/dossiers/{code}/accept", {})
        assert response.status_code == 200, response.text


def test_pushes_arrive_once_after_fcm_answers_503_then_429(
    tmp_path: Path, e2e_template: str
) -> None:
    with running_stack(tmp_path, template=e2e_template, extra_env=FAST_RETRIES) as stack:
        app = sign_up(stack, PHONE)
        register_device(app, TOKEN)
        agency = Agency(stack, AGENCY_CODE)
        dossiers = [submitted(app) for _ in range(3)]
        stack.fcm.outage = [Outcome("UNAVAILABLE")] * 4 + [
            Outcome("QUOTA_EXCEEDED", retry_after=2)
        ] * 2

        accept_all(agency, [code for _, code in dossiers])

        wait_until(lambda: all_delivered(stack, 3), timeout=90, interval=0.2, what="deliveries")
        pushes = pushes_to(stack, TOKEN)
        assert sorted(p["data"]["dossier_id"] for p in pushes) == sorted(d for d, _ in dossiers)
        assert {p["data"]["type"] for p in pushes} == {"dossier.accepted"}
        assert collections.Counter(stack.fcm.attempts_for(TOKEN)) == {
            "ok": 3,
            "UNAVAILABLE": 4,
            "QUOTA_EXCEEDED": 2,
        }
        assert sum(attempts for _, attempts in delivery_states(stack)) == 9
        agency.close()
        app.close()


def test_worker_killed_mid_batch_its_own_recovery_sends_every_push_once(
    tmp_path: Path, e2e_template: str
) -> None:
    # The recovery settings are the defaults (what production gets), except the
    # periodic backstop, which runs every minute by default: here it never fires, so
    # the pushes can only go out through the restarted worker's own recovery check
    # (every JOB_RECOVERY_SECONDS, once the dead worker's lease has passed). How long
    # that takes is a matter of load, not asserted here (no timed assertions): the
    # README's "within about 15 s" is the lease plus the check's interval.
    env = {
        **FAST_RETRIES,
        "PUSH_RECOVERY_CRON": "0 0 1 1 *",
        "FCM_CONCURRENCY": "2",  # a batch of 8 goes out in 4 slices of 2
        # One job at a time: the fan-out does not spread the 8 over side-by-side jobs
        # (it does up to WORKER_CONCURRENCY), so one job sends its slices in turn.
        "WORKER_CONCURRENCY": "1",
        "SMS_RESEND_SECONDS": "0",
        "SMS_PER_NUMBER_PER_HOUR": "50",
    }
    with running_stack(tmp_path, template=e2e_template, extra_env=env) as stack:
        app = sign_up(stack, PHONE)
        tokens = [f"{TOKEN}-{n}" for n in range(8)]
        phones = [app] + [second_device(stack, PHONE) for _ in tokens[1:]]
        for phone, token in zip(phones, tokens, strict=True):
            register_device(phone, token)
        agency = Agency(stack, AGENCY_CODE)
        dossier_id, code = submitted(app)
        stack.fcm.delay = 1.0  # slow enough for the kill to land while a slice is in flight

        accept_all(agency, [code])
        wait_until(
            lambda: stack.fcm.held == 2 and len(stack.fcm.accepted()) == 2,
            timeout=30,
            interval=0.01,
            what="the second slice in flight",
        )
        stack.supervise_worker()
        stack.kill_worker()
        wait_until(
            lambda: stack.worker_exits == [-signal.SIGKILL] and stack.worker_running(),
            timeout=30,
            what="the supervisor to restart the killed worker",
        )

        def settled() -> bool:
            states = collections.Counter(state for state, _ in delivery_states(stack))
            return states == {"delivered": 6, "sending": 2}

        wait_until(settled, timeout=120, interval=0.2, what="the restarted worker's recovery")
        wait_until(lambda: stack.fcm.in_flight == 0, timeout=10, what="quiet FCM")
        received = collections.Counter(m["token"] for m in stack.fcm.accepted())
        assert received == dict.fromkeys(tokens, 1)
        assert {m["data"]["dossier_id"] for m in stack.fcm.accepted()} == {dossier_id}
        agency.close()
        for phone in phones:
            phone.close()


def test_redis_down_rest_keeps_working_otp_fails_closed_and_the_socket_resumes(
    tmp_path: Path, e2e_template: str
) -> None:
    with running_stack(tmp_path, template=e2e_template) as stack:
        app = sign_up(stack, PHONE)
        stream = EventStream(app)
        stream.open()
        first_id, first_code = submitted(app)
        stream.wait_for("dossier.submitted")
        second_id = draft(app)
        pay_submission_fee(app, second_id)
        agency = Agency(stack, AGENCY_CODE)
        newcomer = MobileApp(stack)
        other_phone = "+84987650003"
        started = newcomer.post(
            "/api/v1/auth/register",
            {"phone": other_phone, "full_name": "Phạm Thị Thu", "password": PASSWORD},
        )
        assert started.status_code == 202, started.text
        challenge = {
            "challenge_id": started.json()["challenge_id"],
            "code": sms_code(stack, other_phone),
        } | newcomer.device()

        stack.redis.stop()

        assert app.get("/api/v1/auth/me").status_code == 200
        assert app.get(f"/api/v1/dossiers/{second_id}").json()["status"] == 0
        response = app.post(f"/api/v1/dossiers/{second_id}/submit")
        assert response.status_code == 200, response.text
        assert app.get(f"/api/v1/dossiers/{second_id}").json()["status"] == 1
        accepted = agency.post(f"/api/v1/agency/dossiers/{first_code}/accept", {})
        assert accepted.status_code == 200, accepted.text
        refused = newcomer.post("/api/v1/auth/register/verify", challenge)
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "service_unavailable"
        assert verified_at(stack, other_phone) == [(None,)]

        stack.redis.start()

        logged = stack.sql(
            "SELECT id, type, dossier_id::text FROM tracking_dossierevent "
            "WHERE dossier_id IN (%s, %s) ORDER BY id",
            (first_id, second_id),
        )
        # The app reconnects as the guide says (new ticket, last event id, retried with
        # a pause on failure); nothing is lost, nothing repeated. The first try works:
        # the web process's Redis pools replace their dead connections (REDIS_RETRIES).
        assert stream.reconnect() == 0
        stream.wait_for("dossier.accepted")
        assert [(e["id"], e["event_type"], e["dossier_id"]) for e in stream.events()] == [
            (event_id, kind, dossier) for event_id, kind, dossier in logged
        ]
        stream.close()
        assert [kind for _, kind, _ in logged] == [
            "dossier.submitted",
            "dossier.submitted",
            "dossier.accepted",
        ]
        verified = newcomer.post("/api/v1/auth/register/verify", challenge)
        assert verified.status_code == 201, verified.text
        assert verified_at(stack, other_phone)[0][0] is not None
        for client in (app, newcomer, agency):
            client.close()


def test_database_unreachable_answers_503_without_hanging_and_recovers(
    tmp_path: Path, e2e_template: str
) -> None:
    env = {"WORKER_EXIT_TIMEOUT_SECONDS": "5"}
    with running_stack(tmp_path, template=e2e_template, db_proxy=True, extra_env=env) as stack:
        assert stack.proxy is not None
        stack.supervise_worker()  # restarts it on a failure status only
        app = sign_up(stack, PHONE)
        register_device(app, TOKEN)
        agency = Agency(stack, AGENCY_CODE)
        dossier_id = draft(app)
        pay_submission_fee(app, dossier_id)
        # Every request must end well before this: a hang would raise ReadTimeout.
        app.http.timeout = httpx.Timeout(8)

        stack.proxy.cut()

        for path in ("/api/v1/auth/me", f"/api/v1/dossiers/{dossier_id}"):
            response = app.get(path)
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "database_unavailable"
        submit = app.post(f"/api/v1/dossiers/{dossier_id}/submit")
        assert submit.status_code == 503, submit.text
        assert httpx.get(f"{stack.base_url}/readyz", timeout=8).status_code == 503
        # The worker does not wait for the database to come back: it says why it stops
        # and exits with a failure status, for its supervisor to restart it.
        wait_until(lambda: stack.worker_exits, timeout=60, what="the worker to exit")
        assert stack.worker_exits[0] == 1
        assert "worker: stopping because its listener task failed" in stack.log_tail(
            "worker", chars=1_000_000
        )

        stack.proxy.restore()

        wait_until(
            lambda: app.get("/api/v1/auth/me").status_code == 200,
            timeout=30,
            what="the API after the database is back",
        )
        # Restarted while the database was still cut off, a worker may fail again (1):
        # the supervisor keeps restarting it until one runs.
        wait_until(stack.worker_running, timeout=60, what="a restarted worker")
        assert set(stack.worker_exits) == {1}
        submitted_now = app.post(f"/api/v1/dossiers/{dossier_id}/submit")
        assert submitted_now.status_code == 200, submitted_now.text
        code = submitted_now.json()["code"]
        accept_all(agency, [code])
        wait_until(lambda: all_delivered(stack, 1), timeout=60, what="the push after recovery")
        assert [p["data"]["dossier_code"] for p in pushes_to(stack, TOKEN)] == [code]
        assert stack.fcm.attempts_for(TOKEN) == ["ok"]
        # Every job deferred by the submission and the acceptance ran, once.
        jobs = stack.sql(
            "SELECT task_name, status, attempts FROM procrastinate_jobs "
            "WHERE queue_name <> 'maintenance' ORDER BY id"
        )
        assert jobs, "no job was deferred"
        assert {(status, attempts) for _, status, attempts in jobs} == {("succeeded", 1)}
        # Asked to stop (SIGTERM, as a supervisor or a deploy does), it exits with 0
        # and the supervisor leaves it down.
        worker = stack.worker
        assert worker is not None
        assert worker.running()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        wait_until(lambda: stack.worker_exits[-1] == 0, timeout=10, what="the supervisor")
        assert stack.worker is worker
        agency.close()
        app.close()


def test_lost_payment_callback_is_settled_by_the_reconciliation_job(
    tmp_path: Path, e2e_template: str
) -> None:
    env = {"PAYMENT_RECONCILE_AFTER_MINUTES": "0"}
    with running_stack(tmp_path, template=e2e_template, extra_env=env) as stack:
        app = sign_up(stack, PHONE)
        register_device(app, TOKEN)
        stream = EventStream(app)
        stream.open()
        agency = Agency(stack, AGENCY_CODE)
        dossier_id, code = submitted(app)
        accept_all(agency, [code])
        asked = agency.post(
            f"/api/v1/agency/dossiers/{code}/request-payment",
            {
                "amount": 45_000,
                "description": "Lệ phí",
                "lines": [{"kind": "charge", "label": "Lệ phí", "amount": 45_000}],
            },
        )
        assert asked.status_code == 200, asked.text
        stream.wait_for("dossier.payment_requested")
        # The gateway takes the money, but its callback is lost and the citizen's
        # browser never comes back (the phone died on the gateway's page).
        stack.payments.state.config.drop_callbacks = True
        checkout = app.post(f"/api/v1/payments/dossiers/{dossier_id}/checkout", {})
        assert checkout.status_code == 201, checkout.text
        payment_id = checkout.json()["id"]
        with httpx.Client(timeout=15) as browser:
            assert browser.get(checkout.json()["checkout_url"]).status_code == 200
            order_ref = next(
                iter(o for o in stack.payments.state.orders.values() if o["amount"] == 45_000)
            )["ref"]
            paid = browser.get(
                f"{stack.payments.url}/paymentv2/pay?ref={order_ref}&outcome=success"
            )
            assert paid.status_code == 302
        assert app.get(f"/api/v1/payments/{payment_id}").json()["status"] == "pending"
        assert app.get(f"/api/v1/dossiers/{dossier_id}").json()["status"] == 6

        # The periodic reconciliation job runs (deferred now rather than waiting
        # for its cron), asks the gateway (querydr) and settles the payment.
        stack.python(
            "from django.db import transaction\n"
            "from backend.jobs import defer\n"
            "from payments.tasks import reconcile_pending\n"
            "with transaction.atomic():\n"
            "    defer(reconcile_pending, timestamp=0)\n"
        )
        event = stream.wait_for("dossier.payment_received", timeout=60)
        assert event["dossier_id"] == dossier_id
        payment = app.get(f"/api/v1/payments/{payment_id}").json()
        assert payment["status"] == "paid"
        assert payment["receipt_number"]
        assert app.get(f"/api/v1/dossiers/{dossier_id}").json()["status"] == 4
        receipt = app.get(f"/api/v1/payments/{payment_id}/receipt")
        assert receipt.status_code == 200
        assert receipt.content.startswith(b"%PDF-")
        assert stack.sql(
            "SELECT settled_by, status FROM payments_payment WHERE id = %s", (payment_id,)
        ) == [("query", "paid")]
        wait_until(
            lambda: (
                "dossier.payment_received" in [p["data"]["type"] for p in pushes_to(stack, TOKEN)]
            ),
            timeout=30,
            what="the payment's push",
        )
        stream.close()
        agency.close()
        app.close()
