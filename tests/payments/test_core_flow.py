"""Request payment -> checkout -> the fake gateway takes the money -> signed callback ->
the dossier is back in processing, with one event and one push job."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models.sql import compiler
from django.utils.module_loading import import_string

from dossiers.models import Dossier, DossierEvent
from payments import actions
from payments.models import Payment, PaymentAnomaly, PaymentRequest
from tests.payments.conftest import (
    AMOUNT,
    FEE_LINES,
    Citizen,
    configure,
    jobs,
    only_payment,
    pay_at_gateway,
    post_ipn,
)

pytestmark = pytest.mark.django_db


def guide_event_data(guide: str) -> set[str]:
    """The keys a guide lists as `dossier.payment_received`'s data."""
    text = (Path(settings.BASE_DIR) / "mobile_api_docs" / guide).read_text(encoding="utf-8")
    [listed] = re.findall(
        r"`dossier\.payment_received`\s+\((?:actor `\w+`, )?data: ([^)]*)\)", text
    )
    return set(re.findall(r"`(\w+)`", listed))


def received_events(citizen: Citizen) -> list[DossierEvent]:
    return list(
        DossierEvent.objects.filter(dossier=citizen.dossier, type="dossier.payment_received")
    )


def test_checkout_returns_a_pending_payment_with_the_gateway_url(citizen, fake_gateway) -> None:
    response = citizen.checkout(headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 201, response
    body = response.json()
    assert body["status"] == "pending"
    assert body["amount"] == AMOUNT
    assert isinstance(body["amount"], int)
    assert body["currency"] == "VND"
    assert body["lines"] == FEE_LINES
    assert body["checkout_url"].startswith(f"{fake_gateway.url}/paymentv2/vpcpay.html?")
    assert "vnp_Amount=15000000" in body["checkout_url"]
    assert body["expires_at"]
    assert body["receipt_url"] is None
    # The fake checks our signature the way VNPay does: it shows its payment page.
    import httpx

    assert httpx.get(body["checkout_url"], timeout=5).status_code == 200
    tampered = body["checkout_url"].replace("vnp_Amount=15000000", "vnp_Amount=100")
    assert httpx.get(tampered, timeout=5).status_code == 400


def test_a_connection_dropped_at_the_national_checkout_is_a_503_and_no_payment(
    citizen, fake_gateway
) -> None:
    fake_gateway.fail_next("drop", path_contains="/national/api/v1/transactions")

    response = citizen.checkout("national")

    assert response.status_code == 503, response
    assert response.json()["code"] == "gateway_unavailable"
    assert fake_gateway.paths() == ["POST /national/api/v1/transactions"]
    assert fake_gateway.state.orders == {}
    assert not Payment.objects.exists()
    assert citizen.checkout("national").status_code == 201  # the fault was for one call


def test_paid_callback_moves_the_dossier_back_to_processing(citizen, fake_gateway) -> None:
    payment = citizen.checkout().json()
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, payment["checkout_url"])

    response = post_ipn(params)

    assert response.status_code == 200
    assert response.json() == {"RspCode": "00", "Message": "Confirm Success"}
    stored = only_payment(citizen)
    assert stored.status == Payment.Status.PAID
    assert stored.counted
    assert not stored.needs_refund
    assert stored.gateway_reference == params["vnp_TransactionNo"]
    assert stored.receipt_number
    assert stored.settled_by == "callback"
    assert stored.request.status == PaymentRequest.Status.PAID
    assert citizen.refresh().status == Dossier.Status.PROCESSING
    [event] = received_events(citizen)
    assert (event.status_before, event.status_after) == (6, 4)
    assert event.data["amount"] == AMOUNT
    assert event.data["receipt_number"] == stored.receipt_number
    # What the app's and the agencies' guides say the event carries.
    assert guide_event_data("payments.md") == set(event.data)
    assert guide_event_data("agency-api.md") == set(event.data)
    assert [job["event_id"] for job in jobs("notifications.fan_out_event")][-1] == event.pk
    assert len([j for j in jobs("notifications.fan_out_event") if j["event_id"] == event.pk]) == 1
    shown = citizen.api.get(f"/api/v1/payments/{stored.pk}").json()
    assert shown["status"] == "paid"
    assert shown["checkout_url"] is None
    assert shown["receipt_url"] == f"/api/v1/payments/{stored.pk}/receipt"


def test_a_paid_callback_reads_and_writes_only_what_settling_needs(
    citizen, fake_gateway, settings, django_assert_num_queries
) -> None:
    # Every payment's IPN runs this, twice or more (VNPay retries and duplicates).
    # A plain read of the order first (what a repeat is answered from); then, in the
    # transaction (a savepoint here), the request's lock, the payment's; the dossier
    # locked, checked, moved and read back by one UPDATE ... RETURNING (only the
    # columns the move and its event need, no join, not the form data); the event's
    # subscribers get their jobs in one INSERT.
    payment = citizen.checkout().json()
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, payment["checkout_url"])
    before = citizen.refresh().updated_at

    with django_assert_num_queries(11) as captured:
        response = post_ipn(params)

    assert response.json() == {"RspCode": "00", "Message": "Confirm Success"}
    statements = [query["sql"] for query in captured.captured_queries]
    reads = [sql for sql in statements if sql.startswith("SELECT")]
    assert 'FROM "payments_payment"' in reads[0]
    assert "FOR UPDATE" not in reads[0]
    assert statements[1].startswith("SAVEPOINT")
    assert 'FROM "payments_paymentrequest"' in reads[1]
    assert 'FROM "payments_payment"' in reads[2]
    assert all("FOR UPDATE" in sql for sql in reads[1:3])
    assert not [sql for sql in statements if 'FROM "dossiers_dossier"' in sql]
    [update] = [sql for sql in statements if sql.startswith('UPDATE "dossiers_dossier"')]
    assert statements.index(update) == 4  # right after the locks, before the event
    assigned = update.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    assert [part.split(" = ")[0] for part in assigned.split(", ")] == [
        '"status"',
        '"version"',
        '"updated_at"',
    ]
    assert '"version" = "version" + 1' in assigned
    assert update.split(" WHERE ", 1)[1].startswith('"id" = ')
    returned = 'RETURNING "version", "organisation_id", "agency_id", "applicant_id"'
    assert f' AND "status" = 6 {returned}' in update
    assert len([sql for sql in statements if "procrastinate_defer_jobs" in sql]) == 1
    dossier = citizen.refresh()
    assert (dossier.status, dossier.version) == (Dossier.Status.PROCESSING, 3)
    assert dossier.updated_at > before  # the agency feed sees the move
    [event] = received_events(citizen)
    assert event.agency_id == dossier.agency_id  # copied from the RETURNING, not read
    for path in settings.EVENT_SUBSCRIBERS:
        task_name = import_string(path).name
        assert [job["event_id"] for job in jobs(task_name)].count(event.pk) == 1, task_name


def queries_built_by_the_orm(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """From now on, each query the ORM's compilers build: (compiler, model)."""
    built: list[tuple[str, str]] = []
    kinds = (compiler.SQLCompiler, compiler.SQLInsertCompiler, compiler.SQLUpdateCompiler)
    for kind in kinds:

        def as_sql(self: Any, *args: Any, _original: Any = kind.as_sql, **kwargs: Any) -> Any:
            built.append((type(self).__name__, self.query.model.__name__))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(kind, "as_sql", as_sql)
    return built


def test_a_callback_sends_sql_made_once_not_queries_the_orm_builds_each_time(
    citizen, fake_gateway, monkeypatch, django_assert_num_queries
) -> None:
    # The ORM built every statement of a callback anew, 0.35-0.7 ms of CPU each, more
    # than PostgreSQL took to answer it: the reads are compiled once per process
    # (backend/joined_read.py), the UPDATEs and the event's INSERT made once
    # (backend/row_writes.py); the rest is constant SQL.
    configure(fake_gateway, drop_callbacks=True)
    earlier = Citizen()  # the process's first callback compiles what is then replayed
    assert (
        post_ipn(pay_at_gateway(fake_gateway, earlier.checkout().json()["checkout_url"])).json()[
            "RspCode"
        ]
        == "00"
    )
    params = pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    built = queries_built_by_the_orm(monkeypatch)

    with django_assert_num_queries(11):
        assert post_ipn(params).json()["RspCode"] == "00"
    assert built == []

    # Its twin, sent at the same moment, found the payment pending in its plain read
    # (as if it had: the plain read's verdict forced) and is answered under the locks.
    built.clear()
    monkeypatch.setattr(actions, "_repeats_recorded_payment", lambda seen, result: False)
    with django_assert_num_queries(5) as captured:
        assert post_ipn(params).json() == {"RspCode": "02", "Message": "Order already confirmed"}
    statements = [query["sql"] for query in captured.captured_queries]
    assert 'FROM "payments_payment"' in statements[0]
    assert "FOR UPDATE" not in statements[0]
    assert statements[1].startswith("SAVEPOINT")
    assert 'FROM "payments_paymentrequest"' in statements[2]
    assert 'FROM "payments_payment"' in statements[3]
    assert all(sql.endswith("FOR UPDATE") for sql in statements[2:4])
    assert statements[4].startswith("RELEASE SAVEPOINT")
    assert built == []
    assert len(received_events(citizen)) == 1


def test_a_repeated_callback_is_answered_from_one_plain_read(
    citizen, fake_gateway, django_assert_num_queries
) -> None:
    # VNPay sends an IPN again until it reads 00 or 02, and often twice at once: the
    # repeat of a recorded payment takes no transaction and no lock.
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    assert post_ipn(params).json()["RspCode"] == "00"
    version = citizen.refresh().version

    with django_assert_num_queries(1) as captured:
        response = post_ipn(params)

    assert response.json() == {"RspCode": "02", "Message": "Order already confirmed"}
    [read] = [query["sql"] for query in captured.captured_queries]
    assert read.startswith("SELECT")
    assert "FOR UPDATE" not in read
    assert citizen.refresh().version == version
    assert len(received_events(citizen)) == 1
    assert PaymentAnomaly.objects.count() == 0


def test_replayed_callback_is_answered_already_confirmed_and_changes_nothing(
    citizen, fake_gateway
) -> None:
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    assert post_ipn(params).json()["RspCode"] == "00"
    version = citizen.refresh().version

    for _ in range(3):
        assert post_ipn(params).json() == {"RspCode": "02", "Message": "Order already confirmed"}

    assert citizen.refresh().version == version
    assert len(received_events(citizen)) == 1
    assert PaymentAnomaly.objects.count() == 0


@pytest.mark.parametrize("order", ["return_first", "callback_first"])
def test_return_and_callback_in_either_order_record_one_payment(
    citizen, fake_gateway, order
) -> None:
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    from tests.conftest import ApiClient

    def browser_return() -> None:
        response = ApiClient().get("/api/v1/payments/gateways/vnpay/return", query=params)
        assert response.status_code == 302
        payment = only_payment(citizen)
        assert response.headers["Location"] == f"dichvucong://payments/{payment.pk}?status=paid"

    if order == "return_first":
        browser_return()
        assert post_ipn(params).json()["RspCode"] == "02"
    else:
        assert post_ipn(params).json()["RspCode"] == "00"
        browser_return()

    assert only_payment(citizen).status == "paid"
    assert only_payment(citizen).settled_by == ("return" if order == "return_first" else "callback")
    assert len(received_events(citizen)) == 1
    assert citizen.refresh().status == Dossier.Status.PROCESSING


def test_second_checkout_from_another_device_returns_the_pending_payment(
    citizen, fake_gateway
) -> None:
    from tests.conftest import ApiClient, sign_in

    first = citizen.checkout()
    other_device = ApiClient(token=sign_in(citizen.user)[1].access_token)
    second = other_device.post(f"/api/v1/payments/dossiers/{citizen.dossier.pk}/checkout", {})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["checkout_url"] == first.json()["checkout_url"]
    assert Payment.objects.filter(dossier=citizen.dossier).count() == 1


def test_idempotency_key_replays_the_first_answer(citizen, fake_gateway) -> None:
    first = citizen.checkout(headers={"Idempotency-Key": "same"})
    again = citizen.checkout(headers={"Idempotency-Key": "same"})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_nothing_to_pay_outside_a_payment_request(db, fake_gateway) -> None:
    from tests.conftest import ApiClient, make_user, sign_in
    from tests.factories import make_dossier

    user = make_user()
    dossier = make_dossier(user, status=Dossier.Status.PROCESSING)
    api = ApiClient(token=sign_in(user)[1].access_token)
    response = api.post(f"/api/v1/payments/dossiers/{dossier.pk}/checkout", {})
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_pay"
    assert api.get(f"/api/v1/payments/dossiers/{dossier.pk}/due").status_code == 404
    assert Payment.objects.count() == 0


def test_due_shows_the_agency_request_with_its_fee_lines(citizen, fake_gateway) -> None:
    due = citizen.api.get(f"/api/v1/payments/dossiers/{citizen.dossier.pk}/due").json()
    assert due["source"] == "agency"
    assert due["status"] == "open"
    assert due["amount"] == AMOUNT
    assert due["lines"] == FEE_LINES
    assert due["pending_payment"] is None
    payment = citizen.checkout().json()
    due = citizen.api.get(f"/api/v1/payments/dossiers/{citizen.dossier.pk}/due").json()
    assert due["pending_payment"]["id"] == payment["id"]


def test_a_failed_payment_leaves_the_dossier_waiting_and_a_new_checkout_starts(
    citizen, fake_gateway
) -> None:
    configure(fake_gateway, drop_callbacks=True)
    first = citizen.checkout().json()
    params = pay_at_gateway(fake_gateway, first["checkout_url"], outcome="cancel")
    assert post_ipn(params).json()["RspCode"] == "00"
    assert Payment.objects.get(pk=first["id"]).status == "cancelled"
    assert citizen.refresh().status == Dossier.Status.PAYMENT_REQUESTED
    assert received_events(citizen) == []
    second = citizen.checkout()
    assert second.status_code == 201
    assert second.json()["id"] != first["id"]


def test_agency_stopping_the_dossier_closes_the_request(citizen, fake_gateway) -> None:
    from dossiers import lifecycle
    from payments.tasks import on_dossier_event

    payment = citizen.checkout().json()
    lifecycle.stop(citizen.dossier.pk, lifecycle.Actor.agency_system("T"), reason="Hết hạn")
    stop_event = DossierEvent.objects.get(dossier=citizen.dossier, type="dossier.stopped")
    assert {"event_id": stop_event.pk} in jobs("payments.on_dossier_event")
    on_dossier_event(stop_event.pk)
    assert Payment.objects.get(pk=payment["id"]).status == "cancelled"
    assert PaymentRequest.objects.get(dossier=citizen.dossier).status == "closed"


def test_performance_counts_the_share_of_fee_requests_paid_online(fake_gateway) -> None:
    import datetime as dt

    from django.utils import timezone

    from dossiers import lifecycle, monitoring

    paid, at_counter, waiting = Citizen(), Citizen(), Citizen()
    configure(fake_gateway, drop_callbacks=True)
    assert (
        post_ipn(pay_at_gateway(fake_gateway, paid.checkout().json()["checkout_url"])).json()[
            "RspCode"
        ]
        == "00"
    )
    lifecycle.start_processing(at_counter.dossier.pk, lifecycle.Actor.agency_system("T"))
    today = timezone.localdate()

    period = monitoring._day_bounds(today - dt.timedelta(days=1), today)
    each = [monitoring.fee_requests(c.dossier.agency, *period) for c in (paid, at_counter, waiting)]
    figures = monitoring.fee_requests(None, *period)  # the three agencies'

    assert each == [
        {"requested": 1, "paid_online": 1, "paid_online_share": 1.0},
        {"requested": 1, "paid_online": 0, "paid_online_share": 0.0},
        {"requested": 1, "paid_online": 0, "paid_online_share": 0.0},
    ]
    assert figures == {"requested": 3, "paid_online": 1, "paid_online_share": 0.3333}


def test_an_unknown_gateway_is_a_field_error_of_validation_error(citizen: Citizen) -> None:
    """As payments.md documents it: not a top-level code."""
    response = citizen.checkout("paypal")

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["details"] == [
        {
            "field": "gateway",
            "location": "body",
            "code": "unknown_gateway",
            "message": "Giá trị không nằm trong danh sách cho phép.",
        }
    ]
    assert not Payment.objects.filter(dossier=citizen.dossier).exists()
