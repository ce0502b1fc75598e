"""The fault modes of fakes/server.py in the wire format of each provider that had none
before (payment gateway, national identity provider, business registry), over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from fakes.business_registry import FakeBusinessRegistry, demo_enterprise
from fakes.identity_provider import FakeIdentityProvider
from fakes.payment_gateway import FakePaymentGateway
from fakes.server import FakeServer, Fault
from payments.gateways.national import signature
from payments.gateways.vnpay import QUERY_RESPONSE_FIELDS, secure_hash


@pytest.fixture
def business_registry() -> Iterator[FakeBusinessRegistry]:
    with FakeBusinessRegistry() as fake:
        fake.register(demo_enterprise())
        yield fake


@pytest.fixture
def identity_provider() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider() as fake:
        yield fake


@pytest.fixture
def payment_gateway() -> Iterator[FakePaymentGateway]:
    with FakePaymentGateway(retry_interval_ms=10) as fake:
        yield fake


def lookup(registry: FakeBusinessRegistry) -> httpx.Response:
    url = f"{registry.base_url}/enterprises/{demo_enterprise()['enterprise_code']}"
    return httpx.get(url, headers={"X-API-Key": registry.api_key}, timeout=5)


@pytest.mark.parametrize(
    ("fake", "probe", "status"),
    [
        ("business_registry", "/enterprises/x", 401),  # no API key
        ("identity_provider", "/jwks", 200),
        ("payment_gateway", "/paymentv2/pay", 404),  # no such order
    ],
)
def test_every_one_drops_the_next_connection_and_serves_the_one_after(
    request: pytest.FixtureRequest, fake: str, probe: str, status: int
) -> None:
    server: FakeServer = request.getfixturevalue(fake)
    server.fail_next("drop")

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{server.base_url}{probe}", timeout=5)
    assert httpx.get(f"{server.base_url}{probe}", timeout=5).status_code == status
    assert [e["status"] for e in server.requests] == [None, status]


def test_the_registry_answers_its_own_error_body_and_down_is_a_fault_mode(
    business_registry: FakeBusinessRegistry,
) -> None:
    registry = business_registry
    registry.fail_next("error", status=429, code="rate_limited")
    limited = lookup(registry)
    assert (limited.status_code, limited.json()) == (429, {"error": "rate_limited"})

    registry.mode = "down"
    assert registry.fault_mode == Fault("error", status=503, code="unavailable")
    down = lookup(registry)
    assert (down.status_code, down.json()) == (503, {"error": "unavailable"})
    answer = httpx.post(f"{registry.base_url}/_fake/mode", json={"mode": ""}, timeout=5)
    assert answer.status_code == 200
    assert (registry.mode, registry.fault_mode) == ("", None)
    assert lookup(registry).json() == demo_enterprise()


def test_the_identity_provider_answers_oauth_errors_and_its_outage_page(
    identity_provider: FakeIdentityProvider,
) -> None:
    idp = identity_provider
    idp.fail_next("error", status=400, code="invalid_grant", path_contains="/token")
    refused = httpx.post(f"{idp.issuer}/token", data={"grant_type": "x"}, timeout=5)
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid_grant"})
    assert refused.headers["cache-control"] == "no-store"

    idp.set_mode("down")
    down = httpx.get(f"{idp.issuer}/.well-known/openid-configuration", timeout=5)
    assert (down.status_code, down.text) == (503, "service unavailable")
    assert down.headers["content-type"] == "text/plain; charset=utf-8"
    idp.set_mode("expired")  # one mode at a time: the outage ends
    assert idp.fault_mode is None
    assert httpx.get(f"{idp.issuer}/jwks", timeout=5).status_code == 200


def test_the_payment_gateway_answers_each_api_s_signed_error(
    payment_gateway: FakePaymentGateway,
) -> None:
    gateway = payment_gateway
    config = gateway.state.config
    gateway.fail_next("error", status=200, code="99", path_contains="/national/api/")
    national = httpx.post(f"{gateway.url}/national/api/v1/transactions", json={}, timeout=5)
    body = national.json()
    assert (national.status_code, body["code"], body["message"]) == (200, "99", "Unknown error")
    assert body["signature"] == signature(config.national_secret, body)  # as our adapter checks

    gateway.fail_next("error", status=200, code="99", path_contains="/merchant_webapi/")
    asked = {"vnp_TmnCode": config.vnpay_tmn_code, "vnp_TxnRef": "REF-1"}
    querydr = httpx.post(f"{gateway.url}/merchant_webapi/api/transaction", json=asked, timeout=5)
    answer = querydr.json()
    assert (answer["vnp_ResponseCode"], answer["vnp_TxnRef"]) == ("99", "REF-1")
    # Signed as our VNPay adapter checks it.
    text = "|".join(answer[name] for name in QUERY_RESPONSE_FIELDS)
    assert answer["vnp_SecureHash"] == secure_hash(config.vnpay_secret, text)

    gateway.fail_next("error", status=503, code="99")
    page = httpx.get(f"{gateway.url}/paymentv2/vpcpay.html", timeout=5)
    assert page.status_code == 503
    assert "(code=99)" in page.text
    assert page.headers["content-type"] == "text/html"


def test_the_payment_gateway_settings_and_log_are_controls(
    payment_gateway: FakePaymentGateway,
) -> None:
    gateway, base = payment_gateway, payment_gateway.url
    answer = httpx.post(f"{base}/_fake/config", json={"drop_callbacks": True}, timeout=5)
    assert (answer.status_code, answer.json()["drop_callbacks"]) == (200, True)
    bad = {"duplicate_callbacks": 2, "no_such_setting": 1}
    assert httpx.post(f"{base}/_fake/config", json=bad, timeout=5).status_code == 400
    assert gateway.state.config.duplicate_callbacks == 0  # all or nothing

    httpx.post(f"{base}/national/api/v1/transactions", json={}, timeout=5)
    log = httpx.get(f"{base}/_fake/log", timeout=5).json()
    assert (log["orders"], log["callbacks"]) == ([], [])
    assert [e["path"] for e in log["requests"]] == ["/national/api/v1/transactions"]

    assert httpx.post(f"{base}/_fake/reset", timeout=5).status_code == 200
    assert gateway.state.config.drop_callbacks is False  # back to how it was started
    assert httpx.get(f"{base}/_fake/log", timeout=5).json()["requests"] == []
