"""What must never happen: forged callbacks that change something, money counted twice,
a late payment silently dropped, a wrong amount accepted as paid."""

from __future__ import annotations

import json

import pytest

from dossiers.models import Dossier, DossierEvent
from fakes.payment_gateway import national_sign, vnpay_hash
from payments.models import Payment, PaymentAnomaly, PaymentRequest
from tests.payments.conftest import (
    AMOUNT,
    NATIONAL_MERCHANT,
    NATIONAL_SECRET,
    VNPAY_SECRET,
    Citizen,
    configure,
    only_payment,
    pay_at_gateway,
    post_ipn,
)

pytestmark = pytest.mark.django_db


def paid_params(citizen: Citizen, fake_gateway) -> dict[str, str]:
    configure(fake_gateway, drop_callbacks=True)
    return pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])


def resigned(params: dict[str, str], secret: str = VNPAY_SECRET, **changes: str) -> dict[str, str]:
    changed = {k: v for k, v in params.items() if k != "vnp_SecureHash"}
    changed.update(changes)
    changed["vnp_SecureHash"] = vnpay_hash(secret, changed)
    return changed


def assert_nothing_changed(citizen: Citizen) -> None:
    payment = only_payment(citizen)
    assert payment.status == Payment.Status.PENDING
    assert not payment.counted
    assert payment.receipt_number is None
    assert payment.request.status == PaymentRequest.Status.OPEN
    assert citizen.refresh().status == Dossier.Status.PAYMENT_REQUESTED
    assert citizen.dossier.version == 2  # the payment request's move only
    assert not DossierEvent.objects.filter(type="dossier.payment_received").exists()


@pytest.mark.parametrize(
    ("forgery", "expected"),
    [
        ("bad_signature", "97"),
        ("wrong_secret", "97"),
        ("tampered_amount", "97"),
        ("tampered_currency", "97"),
        ("wrong_merchant", "97"),
        ("no_signature", "97"),
        ("unknown_order", "01"),
    ],
)
def test_forged_vnpay_callback_changes_nothing(citizen, fake_gateway, forgery, expected) -> None:
    params = paid_params(citizen, fake_gateway)
    forged = dict(params)
    if forgery == "bad_signature":
        forged["vnp_SecureHash"] = "0" * 128
    elif forgery == "wrong_secret":
        forged = resigned(params, secret="not-our-secret")
    elif forgery == "tampered_amount":
        forged["vnp_Amount"] = str(int(params["vnp_Amount"]) - 100)
    elif forgery == "tampered_currency":
        forged["vnp_CurrCode"] = "USD"
    elif forgery == "wrong_merchant":
        forged = resigned(params, vnp_TmnCode="OTHERTMN")
    elif forgery == "no_signature":
        del forged["vnp_SecureHash"]
    elif forgery == "unknown_order":
        forged = resigned(params, vnp_TxnRef="NOTOURORDER000000000")

    response = post_ipn(forged)

    assert response.status_code == 200
    assert response.json()["RspCode"] == expected
    assert_nothing_changed(citizen)
    assert PaymentAnomaly.objects.count() == 0
    # The forged return of the browser changes nothing either.
    back = post_return(forged)
    assert back.headers["Location"].endswith("status=invalid") or expected == "01"
    assert_nothing_changed(citizen)


def post_return(params: dict[str, str]):
    from tests.conftest import ApiClient

    return ApiClient().get("/api/v1/payments/gateways/vnpay/return", query=params)


def test_signed_amount_that_differs_is_never_paid_and_is_recorded(citizen, fake_gateway) -> None:
    params = paid_params(citizen, fake_gateway)
    short = resigned(params, vnp_Amount=str((AMOUNT - 1000) * 100))

    response = post_ipn(short)

    assert response.json() == {"RspCode": "04", "Message": "invalid amount"}
    assert_nothing_changed(citizen)
    [anomaly] = PaymentAnomaly.objects.all()
    assert anomaly.kind == "amount_mismatch"
    assert anomaly.reported_amount == AMOUNT - 1000
    # The right amount still settles it afterwards.
    assert post_ipn(params).json()["RspCode"] == "00"
    assert only_payment(citizen).status == "paid"


def test_the_fake_reports_a_tampered_total_and_we_refuse_it(citizen, fake_gateway) -> None:
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(
        fake_gateway, citizen.checkout().json()["checkout_url"], amount=str(AMOUNT + 1)
    )
    assert post_ipn(params).json()["RspCode"] == "04"
    assert_nothing_changed(citizen)


def national_checkout(citizen: Citizen, fake_gateway) -> dict[str, str]:
    configure(fake_gateway, drop_callbacks=True)
    response = citizen.checkout("national")
    assert response.status_code == 201, response
    url = response.json()["checkout_url"]
    assert url.startswith(f"{fake_gateway.url}/national/pay/")
    return pay_at_gateway(fake_gateway, url)


def national_callback(citizen, fake_gateway, **changes) -> dict:
    back = national_checkout(citizen, fake_gateway)
    body = {
        "merchant_id": NATIONAL_MERCHANT,
        "order_id": back["order_id"],
        "transaction_id": back["transaction_id"],
        "amount": AMOUNT,
        "currency": "VND",
        "status": "SUCCESS",
        "bank_code": "VCB",
        "paid_at": back["paid_at"],
    }
    body.update(changes)
    body["signature"] = national_sign(NATIONAL_SECRET, body)
    return body


def test_national_platform_paid_callback(citizen, fake_gateway) -> None:
    body = national_callback(citizen, fake_gateway)
    assert post_ipn(body, "national").json() == {"code": "00", "message": "Accepted"}
    assert only_payment(citizen).status == "paid"
    assert citizen.refresh().status == Dossier.Status.PROCESSING
    assert post_ipn(body, "national").json()["code"] == "02"


@pytest.mark.parametrize(
    ("forgery", "expected"),
    [
        ("tampered_amount", "97"),
        ("tampered_currency", "97"),
        ("signed_usd", "04"),
        ("wrong_merchant", "97"),
        ("unknown_order", "01"),
        ("not_json", "99"),
        ("duplicate_key", "99"),
    ],
)
def test_forged_national_callback_changes_nothing(citizen, fake_gateway, forgery, expected) -> None:
    body = national_callback(citizen, fake_gateway)
    if forgery == "tampered_amount":
        body["amount"] = AMOUNT - 1
    elif forgery == "tampered_currency":
        body["currency"] = "USD"
    elif forgery == "signed_usd":
        body = {**body, "currency": "USD"}
        body["signature"] = national_sign(NATIONAL_SECRET, body)
    elif forgery == "wrong_merchant":
        body = {**body, "merchant_id": "SOMEONE-ELSE"}
        body["signature"] = national_sign(NATIONAL_SECRET, body)
    elif forgery == "unknown_order":
        body = {**body, "order_id": "NOPE"}
        body["signature"] = national_sign(NATIONAL_SECRET, body)
    from tests.conftest import ApiClient

    path = "/api/v1/payments/gateways/national/callback"
    if forgery == "not_json":
        response = ApiClient().post(path, raw=b"[not json", content_type="application/json")
    elif forgery == "duplicate_key":
        # Signed as it is, with its status given again: the platform's signer and this
        # server could read two different bodies in one text, so it is not read at all.
        raw = b'{"status": "SUCCESS", ' + json.dumps(body).encode()[1:]
        response = ApiClient().post(path, raw=raw, content_type="application/json")
    else:
        response = ApiClient().post(path, body)
    assert response.status_code == 200
    assert response.json()["code"] == expected
    assert_nothing_changed(citizen)


def test_callback_for_an_expired_payment_is_an_anomaly_not_dropped(citizen, fake_gateway) -> None:
    from payments import actions

    params = paid_params(citizen, fake_gateway)
    payment = only_payment(citizen)
    assert actions.expire_payment(payment.pk)

    response = post_ipn(params)

    assert response.json()["RspCode"] == "02"
    payment.refresh_from_db()
    assert payment.status == "expired"
    assert not payment.counted
    [anomaly] = PaymentAnomaly.objects.all()
    assert (anomaly.kind, anomaly.payment_id, anomaly.reported_amount) == (
        "paid_after_expiry",
        payment.pk,
        AMOUNT,
    )
    assert anomaly.gateway_reference == params["vnp_TransactionNo"]
    assert citizen.refresh().status == Dossier.Status.PAYMENT_REQUESTED
    post_ipn(params)  # the gateway retries: still one anomaly
    assert PaymentAnomaly.objects.count() == 1


def test_callback_for_a_cancelled_payment_is_an_anomaly(citizen, fake_gateway) -> None:
    params = paid_params(citizen, fake_gateway)
    payment = only_payment(citizen)
    assert citizen.api.post(f"/api/v1/payments/{payment.pk}/cancel").json()["status"] == "cancelled"

    assert post_ipn(params).json()["RspCode"] == "02"
    assert PaymentAnomaly.objects.get().kind == "paid_after_cancel"
    assert only_payment(citizen).status == "cancelled"


def test_the_same_order_paid_twice_is_counted_once_and_flagged(citizen, fake_gateway) -> None:
    params = paid_params(citizen, fake_gateway)
    assert post_ipn(params).json()["RspCode"] == "00"
    second = resigned(params, vnp_TransactionNo="99999999")

    assert post_ipn(second).json()["RspCode"] == "02"

    payment = only_payment(citizen)
    assert payment.gateway_reference == params["vnp_TransactionNo"]
    assert Payment.objects.filter(request=payment.request, counted=True).count() == 1
    anomaly = PaymentAnomaly.objects.get()
    assert (anomaly.kind, anomaly.gateway_reference) == ("duplicate_payment", "99999999")
    assert DossierEvent.objects.filter(type="dossier.payment_received").count() == 1


@pytest.mark.parametrize(
    ("change", "answer", "kind"),
    [
        ({"vnp_Amount": str((AMOUNT + 1000) * 100)}, "04", "amount_mismatch"),
        ({"vnp_CurrCode": "USD"}, "04", "amount_mismatch"),
        ({"vnp_TransactionNo": "99999999"}, "02", "duplicate_payment"),
    ],
)
def test_a_repeat_that_differs_from_the_recorded_payment_is_settled_under_the_locks(
    citizen, fake_gateway, django_assert_max_num_queries, change, answer, kind
) -> None:
    # Only an exact repeat stops at the plain read: another amount or another
    # transaction of a paid order is money to look at, recorded under the locks.
    params = paid_params(citizen, fake_gateway)
    assert post_ipn(params).json()["RspCode"] == "00"

    with django_assert_max_num_queries(20) as captured:
        assert post_ipn(resigned(params, **change)).json()["RspCode"] == answer

    plain_read, *rest = [query["sql"] for query in captured.captured_queries]
    assert 'FROM "payments_payment"' in plain_read
    assert "FOR UPDATE" not in plain_read
    assert any("FOR UPDATE" in sql for sql in rest)
    payment = only_payment(citizen)
    assert (payment.status, payment.counted) == ("paid", True)
    assert payment.gateway_reference == params["vnp_TransactionNo"]
    assert PaymentAnomaly.objects.get().kind == kind
    assert DossierEvent.objects.filter(type="dossier.payment_received").count() == 1


def test_a_repeat_of_a_refunded_payment_is_answered_from_the_plain_read(
    citizen, fake_gateway, django_assert_num_queries
) -> None:
    from payments import actions

    params = paid_params(citizen, fake_gateway)
    assert post_ipn(params).json()["RspCode"] == "00"
    actions.mark_refunded(only_payment(citizen).pk, reference="RF1")

    with django_assert_num_queries(1):
        assert post_ipn(params).json()["RspCode"] == "02"

    assert only_payment(citizen).status == "refunded"
    assert not PaymentAnomaly.objects.exists()
    assert DossierEvent.objects.filter(type="dossier.payment_received").count() == 1


def test_a_paid_request_refuses_another_checkout(citizen, fake_gateway) -> None:
    assert post_ipn(paid_params(citizen, fake_gateway)).json()["RspCode"] == "00"
    # The dossier is processing again: nothing is due any more.
    assert citizen.checkout().json()["code"] == "nothing_to_pay"


def test_payment_arriving_after_the_agency_moved_on_is_flagged_for_refund(
    citizen, fake_gateway
) -> None:
    from dossiers import lifecycle

    params = paid_params(citizen, fake_gateway)
    lifecycle.start_processing(citizen.dossier.pk, lifecycle.Actor.agency_system("T"))

    assert post_ipn(params).json()["RspCode"] == "00"

    payment = only_payment(citizen)
    assert payment.status == "paid"
    assert payment.needs_refund
    assert not payment.counted
    assert payment.receipt_number is None
    assert PaymentAnomaly.objects.get().kind == "request_closed"
    assert not DossierEvent.objects.filter(type="dossier.payment_received").exists()


def test_status_never_moves_backwards(citizen, fake_gateway) -> None:
    from backend.errors import Conflict
    from payments import actions

    params = paid_params(citizen, fake_gateway)
    post_ipn(params)
    payment = only_payment(citizen)
    failed = resigned(params, vnp_ResponseCode="51", vnp_TransactionStatus="02")
    assert post_ipn(failed).json()["RspCode"] == "02"
    assert only_payment(citizen).status == "paid"
    assert not actions.expire_payment(payment.pk)
    with pytest.raises(Conflict):
        actions.cancel_payment(payment)
    assert actions.mark_refunded(payment.pk, reference="RF1").status == "refunded"
    with pytest.raises(Conflict):
        actions.mark_refunded(payment.pk)


@pytest.mark.parametrize("amount", ["²²²²²²²²", "١٠٠٠٠٠٠", "9" * 5000])
def test_a_signed_vnpay_amount_that_is_not_ascii_digits_pays_nothing(
    citizen, fake_gateway, amount
) -> None:
    params = resigned(paid_params(citizen, fake_gateway), vnp_Amount=amount)

    response = post_ipn(params)

    assert response.status_code == 200
    assert response.json()["RspCode"] == "04"
    assert_nothing_changed(citizen)
    assert post_return(params).status_code == 302
    assert_nothing_changed(citizen)


@pytest.mark.parametrize(
    "amount", ["²²²²", "9" * 5000, float(AMOUNT), True], ids=["digits", "long", "float", "true"]
)
def test_a_signed_national_amount_that_is_not_ascii_digits_pays_nothing(
    citizen, fake_gateway, amount
) -> None:
    body = national_callback(citizen, fake_gateway, amount=amount)

    response = post_ipn(body, "national")

    assert response.status_code == 200
    assert response.json()["code"] == "04"
    assert_nothing_changed(citizen)
