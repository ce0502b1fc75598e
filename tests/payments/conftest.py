"""Fixtures of the payments tests: the fake gateway, a dossier with the agency's payment
request (made by the real lifecycle action), and helpers that pay at the fake."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.db import connection

from auth.models import User
from dossiers import lifecycle
from dossiers.models import Dossier
from fakes.payment_gateway import FakePaymentGateway
from payments.models import Payment
from tests.conftest import ApiClient, ApiResponse, make_user, sign_in
from tests.factories import make_dossier, make_procedure

TMN_CODE = "TESTTMN1"
VNPAY_SECRET = "test-vnpay-secret-0123456789"
NATIONAL_MERCHANT = "TEST-DVC"
NATIONAL_SECRET = "test-national-secret-0123456789"
FEE_LINES = [
    {"kind": "fee", "label": "Phí thẩm định", "amount": 100_000},
    {"kind": "charge", "label": "Lệ phí cấp giấy", "amount": 30_000},
    {"kind": "postage", "label": "Cước trả kết quả qua bưu chính", "amount": 20_000},
]
AMOUNT = 150_000


@pytest.fixture
def fake_gateway(settings: Any) -> Iterator[FakePaymentGateway]:
    gateway = FakePaymentGateway(
        vnpay_tmn_code=TMN_CODE,
        vnpay_secret=VNPAY_SECRET,
        national_merchant_id=NATIONAL_MERCHANT,
        national_secret=NATIONAL_SECRET,
        retry_interval_ms=50,
    ).start()
    settings.PAYMENT_VNPAY_TMN_CODE = TMN_CODE
    settings.PAYMENT_VNPAY_HASH_SECRET = VNPAY_SECRET
    settings.PAYMENT_VNPAY_PAY_URL = f"{gateway.url}/paymentv2/vpcpay.html"
    settings.PAYMENT_VNPAY_API_URL = f"{gateway.url}/merchant_webapi/api/transaction"
    settings.PAYMENT_NATIONAL_MERCHANT_ID = NATIONAL_MERCHANT
    settings.PAYMENT_NATIONAL_SECRET = NATIONAL_SECRET
    settings.PAYMENT_NATIONAL_BASE_URL = f"{gateway.url}/national"
    settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS = 5
    settings.PAYMENT_GATEWAY = "vnpay"
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _empty_job_queue(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs")


class Citizen:
    """A signed-in citizen whose dossier the agency asked to pay (status 6)."""

    def __init__(self, *, amount: int = AMOUNT, lines: list[dict[str, Any]] | None = None) -> None:
        self.user: User = make_user()
        self.api = ApiClient(token=sign_in(self.user)[1].access_token)
        self.procedure = make_procedure()
        self.dossier: Dossier = make_dossier(
            self.user, self.procedure, status=Dossier.Status.PROCESSING
        )
        lifecycle.request_payment(
            self.dossier.pk,
            lifecycle.Actor.agency_system("T (ak_test)"),
            amount=amount,
            description="Phí, lệ phí cấp giấy phép",
            lines=FEE_LINES if lines is None else lines,
        )

    def checkout(self, gateway: str | None = None, **kwargs: Any) -> ApiResponse:
        body = {"gateway": gateway} if gateway else {}
        return self.api.post(
            f"/api/v1/payments/dossiers/{self.dossier.pk}/checkout", body, **kwargs
        )

    def refresh(self) -> Dossier:
        self.dossier.refresh_from_db()
        return self.dossier


@pytest.fixture
def citizen(db: None) -> Citizen:
    return Citizen()


def pay_at_gateway(
    gateway: FakePaymentGateway, checkout_url: str, outcome: str = "success", **extra: str
) -> dict[str, str]:
    """The citizen opens the checkout URL and pays; returns the signed return-URL query.

    With callbacks switched off at the fake (`drop_callbacks`), the same signed
    parameters are what the gateway's IPN would carry.
    """
    page = httpx.get(checkout_url, timeout=5)
    assert page.status_code == 200, page.text
    order_ref = ""
    if "/paymentv2/" in checkout_url:
        order_ref = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(checkout_url).query))[
            "vnp_TxnRef"
        ]
        pay = f"{gateway.url}/paymentv2/pay?ref={order_ref}&outcome={outcome}"
    else:
        pay = f"{checkout_url}/confirm?outcome={outcome}"
    for key, value in extra.items():
        pay += f"&{key}={value}"
    answer = httpx.get(pay, timeout=5)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def configure(gateway: FakePaymentGateway, **changes: Any) -> None:
    gateway.configure(**changes)


def post_ipn(params: dict[str, str], gateway: str = "vnpay") -> ApiResponse:
    """What the gateway sends server to server: VNPay a GET query, the platform a JSON POST."""
    client = ApiClient()
    path = f"/api/v1/payments/gateways/{gateway}/callback"
    if gateway == "vnpay":
        return client.get(path, query=params)
    return client.post(path, params)


def jobs(task_name: str) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT args FROM procrastinate_jobs WHERE task_name = %s ORDER BY id", [task_name]
        )
        return [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in cursor]


def only_payment(citizen: Citizen) -> Payment:
    payments = list(Payment.objects.filter(dossier=citizen.dossier))
    assert len(payments) == 1
    return payments[0]
