"""The VNPost adapter against the loopback fake carrier: success and every failure."""

from __future__ import annotations

import pytest

from fakes.carrier import FakeCarrier
from postal.carriers import CarrierRejected, CarrierUnavailable, Order, Party
from postal.carriers.vnpost import VNPostAdapter

OFFICE = Party("UBND phường Ba Đình", "", "UBND phường Ba Đình", "00004", "01")
CITIZEN = Party("Lê Thị Hoa", "+84912345678", "Số 12 phố Huế", "00070", "01")


def order(number: str = "T001-261124-0001-1", commune: str = "00070") -> Order:
    receiver = Party(CITIZEN.name, CITIZEN.phone, CITIZEN.street, commune, "01")
    return Order(
        order_number=number,
        reference="T001-261124-0001",
        sender=OFFICE,
        receiver=receiver,
        cod_amount=50000,
        postage=16500,
        weight_grams=200,
        note="result",
    )


def adapter(carrier: FakeCarrier, **extra) -> VNPostAdapter:
    options = {"timeout": 0.5, "retries": 0, "backoff_ms": 0}
    options.update(extra)
    return VNPostAdapter(base_url=carrier.url, api_key="test-vnpost-key", **options)


def test_create_order_sends_the_wire_format(fake_carrier: FakeCarrier) -> None:
    created = adapter(fake_carrier).create_order(order())
    assert (created.waybill, created.order_number) == ("EB000000001VN", "T001-261124-0001-1")
    request = fake_carrier.requests[0]
    assert (request["method"], request["path"], request["api_key"]) == (
        "POST",
        "/v1/orders",
        "test-vnpost-key",
    )
    assert request["body"] == {
        "order_number": "T001-261124-0001-1",
        "reference": "T001-261124-0001",
        "service": "standard",
        "sender": {
            "name": "UBND phường Ba Đình",
            "phone": "",
            "address": {
                "street": "UBND phường Ba Đình",
                "commune_code": "00004",
                "province_code": "01",
            },
        },
        "receiver": {
            "name": "Lê Thị Hoa",
            "phone": "+84912345678",
            "address": {"street": "Số 12 phố Huế", "commune_code": "00070", "province_code": "01"},
        },
        "cod_amount": 50000,
        "postage": 16500,
        "weight_grams": 200,
        "note": "result",
    }


def test_same_order_number_gets_the_same_order(fake_carrier: FakeCarrier) -> None:
    first = adapter(fake_carrier).create_order(order())
    second = adapter(fake_carrier).create_order(order())
    assert first == second
    assert len(fake_carrier.orders) == 1


def test_carrier_error_code_is_mapped_and_final(fake_carrier: FakeCarrier) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter(fake_carrier, retries=2).create_order(order(commune="1"))
    assert (caught.value.code, caught.value.retryable) == ("carrier_invalid_address", False)
    assert len(fake_carrier.requests) == 1  # a refusal is never retried
    assert fake_carrier.orders == {}


def test_wrong_api_key_is_retryable(fake_carrier: FakeCarrier) -> None:
    client = VNPostAdapter(base_url=fake_carrier.url, api_key="wrong", retries=0, timeout=0.5)
    with pytest.raises(CarrierUnavailable) as caught:
        client.create_order(order())
    assert (caught.value.code, caught.value.retryable) == ("carrier_unauthorized", True)


def test_server_error_is_unavailable(fake_carrier: FakeCarrier) -> None:
    fake_carrier.fail_next("error", status=503)
    with pytest.raises(CarrierUnavailable) as caught:
        adapter(fake_carrier).create_order(order())
    assert caught.value.code == "carrier_unavailable"
    assert fake_carrier.orders == {}


def test_rate_limit_is_unavailable(fake_carrier: FakeCarrier) -> None:
    fake_carrier.fail_next("error", status=429, code="RATE_LIMITED")
    with pytest.raises(CarrierUnavailable) as caught:
        adapter(fake_carrier).create_order(order())
    assert caught.value.code == "carrier_rate_limited"


def test_timeout_is_unavailable(fake_carrier: FakeCarrier) -> None:
    fake_carrier.fail_next("hang")
    with pytest.raises(CarrierUnavailable) as caught:
        adapter(fake_carrier).create_order(order())
    assert caught.value.code == "carrier_timeout"


def test_non_json_answer_is_unavailable(fake_carrier: FakeCarrier) -> None:
    fake_carrier.fail_next("not_json")
    with pytest.raises(CarrierUnavailable) as caught:
        adapter(fake_carrier).create_order(order())
    assert caught.value.code == "carrier_bad_response"


def test_unreachable_carrier_is_unavailable() -> None:
    client = VNPostAdapter(base_url="http://127.0.0.1:9", api_key="k", retries=0, timeout=0.5)
    with pytest.raises(CarrierUnavailable) as caught:
        client.create_order(order())
    assert caught.value.code == "carrier_unreachable"


def test_idempotent_calls_are_retried_in_the_call(fake_carrier: FakeCarrier) -> None:
    fake_carrier.fail_next("error", status=503, times=2)
    created = adapter(fake_carrier, retries=2).create_order(order())
    assert created.waybill == "EB000000001VN"
    assert fake_carrier.paths() == ["POST /v1/orders"] * 3
    assert len(fake_carrier.orders) == 1


def test_retry_after_a_lost_response_finds_the_same_order(fake_carrier: FakeCarrier) -> None:
    fake_carrier.fail_next("hang_after_create")  # created, but the answer never comes
    created = adapter(fake_carrier, retries=1).create_order(order())
    assert created.waybill == "EB000000001VN"
    assert len(fake_carrier.orders) == 1


def test_retries_give_up_after_the_limit(fake_carrier: FakeCarrier) -> None:
    fake_carrier.fail_next("error", status=500, times=3)
    with pytest.raises(CarrierUnavailable):
        adapter(fake_carrier, retries=2).create_order(order())
    assert len(fake_carrier.requests) == 3


def test_cancel_collect_and_track(fake_carrier: FakeCarrier) -> None:
    client = adapter(fake_carrier)
    waybill = client.create_order(order()).waybill
    client.request_collection(waybill)
    assert fake_carrier.by_waybill(waybill)["status"] == "awaiting_collection"
    tracking = client.track(waybill)
    assert (tracking.waybill, tracking.status, tracking.events) == (
        waybill,
        "awaiting_collection",
        [],
    )
    client.cancel_order(waybill)
    assert fake_carrier.by_waybill(waybill)["status"] == "cancelled"


def test_cancel_after_collection_is_refused(fake_carrier: FakeCarrier) -> None:
    client = adapter(fake_carrier)
    waybill = client.create_order(order()).waybill
    fake_carrier.by_waybill(waybill)["status"] = "picked_up"
    with pytest.raises(CarrierRejected) as caught:
        client.cancel_order(waybill)
    assert caught.value.code == "carrier_not_cancellable"


def test_unknown_waybill_is_order_not_found(fake_carrier: FakeCarrier) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter(fake_carrier).track("EB999999999VN")
    assert caught.value.code == "carrier_order_not_found"
