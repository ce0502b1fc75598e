"""Staff see payments read-only, record refunds, and resolve anomalies in the admin."""

from __future__ import annotations

import pytest
from django.test import Client

from payments.models import Payment, PaymentAnomaly
from tests.conftest import make_user
from tests.payments.conftest import configure, only_payment, pay_at_gateway, post_ipn

pytestmark = pytest.mark.django_db


def staff_client() -> Client:
    admin = make_user(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    return client


def test_staff_record_a_refund_and_resolve_the_anomaly(citizen, fake_gateway) -> None:
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    payment = only_payment(citizen)
    citizen.api.post(f"/api/v1/payments/{payment.pk}/cancel")
    post_ipn(params)  # paid after cancel: an anomaly
    anomaly = PaymentAnomaly.objects.get()
    client = staff_client()

    assert client.get("/admin/payments/payment/").status_code == 200
    assert client.get(f"/admin/payments/payment/{payment.pk}/change/").status_code == 200
    response = client.post(
        f"/admin/payments/paymentanomaly/{anomaly.pk}/change/",
        {"resolution": "Hoàn tiền qua VNPay ngày 07/12"},
    )
    assert response.status_code == 302
    anomaly.refresh_from_db()
    assert anomaly.resolved_at is not None
    assert anomaly.kind == "paid_after_cancel"  # the record itself is not editable
    # A cancelled payment cannot be recorded as refunded (only paid ones can).
    client.post(
        "/admin/payments/payment/",
        {"action": "record_refund", "_selected_action": [str(payment.pk)]},
    )
    assert Payment.objects.get(pk=payment.pk).status == "cancelled"
