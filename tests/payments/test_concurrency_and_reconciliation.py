"""Twenty callbacks at once, the gateway's own IPN calls (with retries, duplicates and
delays) to a live server, and reconciliation of a lost callback."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connections, transaction

from dossiers import lifecycle
from dossiers.models import Dossier, DossierEvent
from fakes.harness import wait_until
from payments import reconciliation
from payments.models import Payment, PaymentAnomaly, ReconciliationReport
from tests.concurrency import until_a_lock_wait
from tests.conftest import ApiClient
from tests.payments.conftest import (
    AMOUNT,
    Citizen,
    configure,
    jobs,
    only_payment,
    pay_at_gateway,
    post_ipn,
)


def one_settlement(citizen: Citizen) -> None:
    payment = only_payment(citizen)
    assert payment.status == "paid"
    assert payment.counted
    assert citizen.refresh().status == Dossier.Status.PROCESSING
    [event] = DossierEvent.objects.filter(type="dossier.payment_received")
    assert [j for j in jobs("notifications.fan_out_event") if j["event_id"] == event.pk] == [
        {"event_id": event.pk}
    ]
    assert PaymentAnomaly.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_callbacks_and_returns_record_one_payment(fake_gateway) -> None:
    citizen = Citizen()
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    answers: list[str] = []
    barrier = threading.Barrier(20)

    def deliver(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            if index % 4 == 0:  # the browser's return at the same time
                response = ApiClient().get("/api/v1/payments/gateways/vnpay/return", query=params)
                answers.append(f"return:{response.status_code}")
            else:
                answers.append(post_ipn(params).json()["RspCode"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(answers) == 20
    assert answers.count("return:302") == 5
    codes = [a for a in answers if not a.startswith("return")]
    assert set(codes) <= {"00", "02"}
    assert len(codes) == 15
    assert codes.count("00") <= 1
    one_settlement(citizen)


@pytest.mark.django_db(transaction=True)
def test_gateway_ipn_with_duplicates_and_delay_reaches_the_live_server(
    fake_gateway, live_server, settings
) -> None:
    settings.PAYMENT_PUBLIC_BASE_URL = live_server.url
    citizen = Citizen()
    configure(
        fake_gateway,
        vnpay_ipn_url=f"{live_server.url}/api/v1/payments/gateways/vnpay/callback",
        duplicate_callbacks=3,
        callback_delay_ms=100,
    )
    payment = citizen.checkout().json()
    back = pay_at_gateway(fake_gateway, payment["checkout_url"])
    assert fake_gateway.wait_for_callbacks(timeout=30)

    calls = [c for c in fake_gateway.state.callbacks if c["order_ref"] == back["vnp_TxnRef"]]
    assert len({c["copy"] for c in calls}) == 4
    assert sorted(c["code"] for c in calls) == ["00", "02", "02", "02"]
    one_settlement(citizen)
    # The browser comes back last: same payment, nothing more recorded.
    response = ApiClient().get("/api/v1/payments/gateways/vnpay/return", query=back)
    assert response.headers["Location"] == f"dichvucong://payments/{payment['id']}?status=paid"
    one_settlement(citizen)


@pytest.mark.django_db(transaction=True)
def test_ipn_answered_with_an_error_is_retried_by_the_gateway(
    fake_gateway, live_server, settings
) -> None:
    settings.PAYMENT_PUBLIC_BASE_URL = live_server.url
    citizen = Citizen()
    # The first attempts go to a path that answers 404 (as a misrouted IPN would),
    # then the gateway's retries reach the right URL. The gateway keeps retrying long
    # enough (attempts) for the switch below to land however busy the machine is.
    configure(
        fake_gateway,
        vnpay_ipn_url=f"{live_server.url}/api/v1/payments/gateways/nope/callback",
        callback_attempts=1000,
    )
    payment = citizen.checkout().json()
    pay_at_gateway(fake_gateway, payment["checkout_url"])
    wait_until(
        lambda: any(c.get("http_status") == 404 for c in fake_gateway.state.callbacks),
        timeout=30,
        what="a misrouted callback",
    )
    configure(
        fake_gateway, vnpay_ipn_url=f"{live_server.url}/api/v1/payments/gateways/vnpay/callback"
    )
    assert fake_gateway.wait_for_callbacks(timeout=60)
    codes = [c["http_status"] for c in fake_gateway.state.callbacks]
    assert codes[0] == 404
    assert codes[-1] == 200
    one_settlement(citizen)


def age(payment: Payment, minutes: int) -> None:
    Payment.objects.filter(pk=payment.pk).update(
        created_at=payment.created_at - dt.timedelta(minutes=minutes),
        expires_at=payment.expires_at - dt.timedelta(minutes=minutes),
    )


@pytest.mark.django_db
def test_lost_callback_is_settled_by_reconciliation(fake_gateway, settings) -> None:
    citizen = Citizen()
    configure(fake_gateway, drop_callbacks=True)
    pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    payment = only_payment(citizen)
    assert reconciliation.settle_stale_pending()["checked"] == 0  # too young to ask about
    age(payment, settings.PAYMENT_RECONCILE_AFTER_MINUTES + 1)

    counts = reconciliation.settle_stale_pending()

    assert counts == {"checked": 1, "settled": 1, "expired": 0, "unreachable": 0}
    assert only_payment(citizen).settled_by == "query"
    one_settlement(citizen)
    assert reconciliation.settle_stale_pending()["checked"] == 0


@pytest.mark.django_db
def test_a_querydr_answered_with_an_error_code_is_asked_again_next_time(
    fake_gateway, settings
) -> None:
    citizen = Citizen()
    configure(fake_gateway, drop_callbacks=True)
    pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    age(only_payment(citizen), settings.PAYMENT_RECONCILE_AFTER_MINUTES + 1)
    # VNPay's own answer to a query it could not serve: signed, code 99.
    fake_gateway.fail_next("error", status=200, code="99", path_contains="/merchant_webapi/")

    counts = reconciliation.settle_stale_pending()

    assert counts == {"checked": 1, "settled": 0, "expired": 0, "unreachable": 1}
    assert only_payment(citizen).status == "pending"
    assert reconciliation.settle_stale_pending()["settled"] == 1  # the fault was for one query
    one_settlement(citizen)


@pytest.mark.django_db
def test_reconciliation_expires_what_the_gateway_never_saw_paid(fake_gateway, settings) -> None:
    citizen = Citizen()
    citizen.checkout()  # the citizen never opened the gateway page
    payment = only_payment(citizen)
    age(payment, settings.PAYMENT_TTL_MINUTES + settings.PAYMENT_RECONCILE_AFTER_MINUTES)

    counts = reconciliation.settle_stale_pending()

    assert counts["expired"] == 1
    assert only_payment(citizen).status == "expired"
    assert citizen.refresh().status == Dossier.Status.PAYMENT_REQUESTED


@pytest.mark.django_db
def test_reconciliation_keeps_trying_while_the_gateway_is_down(fake_gateway, settings) -> None:
    citizen = Citizen()
    citizen.checkout()
    payment = only_payment(citizen)
    age(payment, 60)
    settings.PAYMENT_VNPAY_API_URL = "http://127.0.0.1:9/unreachable"
    assert reconciliation.settle_stale_pending()["unreachable"] == 1
    assert only_payment(citizen).status == "pending"


@pytest.mark.django_db
def test_daily_report_lists_mismatches(fake_gateway) -> None:
    from payments import actions

    citizen = Citizen()
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    payment = only_payment(citizen)
    actions.expire_payment(payment.pk)  # we think expired, the gateway took the money
    post_ipn(params)  # recorded as an anomaly
    day = payment.created_at.astimezone(dt.timezone(dt.timedelta(hours=7))).date()

    report = reconciliation.daily_report(day)

    assert report.checked == 1
    problems = {m["problem"] for m in report.mismatches}
    assert problems == {"status", "anomaly:paid_after_expiry"}
    status = next(m for m in report.mismatches if m["problem"] == "status")
    assert (status["our_status"], status["gateway_status"], status["gateway_amount"]) == (
        "expired",
        "paid",
        AMOUNT,
    )
    assert ReconciliationReport.objects.get(day=day).pk == reconciliation.daily_report(day).pk


def test_reconciliation_and_report_are_periodic_jobs(settings) -> None:
    from procrastinate.contrib.django import app

    import payments.tasks  # noqa: F401  (registers the jobs)

    crons = {
        periodic.task.name: periodic.cron
        for periodic in app.periodic_registry.periodic_tasks.values()
    }
    assert crons["payments.reconcile_pending"] == settings.PAYMENT_RECONCILE_CRON
    assert crons["payments.daily_report"] == settings.PAYMENT_REPORT_CRON


@pytest.mark.django_db
def test_reconciliation_settles_a_national_platform_payment(fake_gateway, settings) -> None:
    citizen = Citizen()
    configure(fake_gateway, drop_callbacks=True)
    checkout = citizen.checkout("national").json()
    pay_at_gateway(fake_gateway, checkout["checkout_url"])  # the browser never returns
    payment = only_payment(citizen)
    assert payment.status == "pending"
    age(payment, settings.PAYMENT_RECONCILE_AFTER_MINUTES + 1)

    assert reconciliation.settle_stale_pending()["settled"] == 1

    one_settlement(citizen)
    assert only_payment(citizen).gateway_reference.startswith("NTT")


@pytest.mark.django_db
def test_a_query_answer_signed_with_another_key_is_not_believed(fake_gateway, settings) -> None:
    citizen = Citizen()
    configure(fake_gateway, drop_callbacks=True)
    pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    payment = only_payment(citizen)
    age(payment, 60)
    # An impostor answering querydr (or a man in the middle) does not hold our secret.
    configure(fake_gateway, vnpay_secret="someone-elses-secret")

    assert reconciliation.settle_stale_pending() == {
        "checked": 1,
        "settled": 0,
        "expired": 0,
        "unreachable": 1,
    }
    assert only_payment(citizen).status == "pending"
    assert citizen.refresh().status == Dossier.Status.PAYMENT_REQUESTED


@pytest.mark.django_db(transaction=True)
def test_a_callback_waiting_on_the_agencys_stop_moves_nothing_and_is_refunded(
    fake_gateway,
) -> None:
    # The paid move is one UPDATE that moves the dossier only from 6: a callback that
    # waits for the agency's move under way looks again once it commits, finds the
    # dossier stopped and writes nothing on it; the money goes back.
    citizen = Citizen()
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    answers: list[dict[str, str]] = []

    def callback() -> None:
        try:
            answers.append(post_ipn(params).json())
        finally:
            connections.close_all()

    caller = threading.Thread(target=callback)
    with transaction.atomic():
        lifecycle.stop(citizen.dossier.pk, lifecycle.Actor.agency_system("T"), reason="Hết hạn")
        caller.start()
        assert until_a_lock_wait(timeout=30)  # the callback waits on the dossier
    caller.join(timeout=60)

    assert answers == [{"RspCode": "00", "Message": "Confirm Success"}]
    stopped = citizen.refresh()
    assert stopped.status == Dossier.Status.STOPPED
    assert stopped.version == 3  # created 1, payment requested 2, stopped 3: no more
    assert not DossierEvent.objects.filter(type="dossier.payment_received").exists()
    payment = only_payment(citizen)
    assert (payment.status, payment.counted, payment.needs_refund) == ("paid", False, True)
    assert payment.request.status == "closed"
    [anomaly] = PaymentAnomaly.objects.all()
    assert anomaly.kind == PaymentAnomaly.Kind.REQUEST_CLOSED
    assert anomaly.details == {"status": int(Dossier.Status.STOPPED)}
