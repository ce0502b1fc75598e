"""postal.md's table of the carrier's success bodies matches what the carrier fake
(which speaks VNPost's wire format, fakes/carrier.py) answers, key for key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from fakes.carrier import API_KEY, FakeCarrier

GUIDE = Path(__file__).resolve().parents[2] / "mobile_api_docs" / "postal.md"


def documented() -> dict[str, tuple[int, dict[str, Any]]]:
    """`METHOD path` -> (status, example body) from the table after the marker."""
    table = GUIDE.read_text(encoding="utf-8").split("<!-- carrier-answers -->")[1]
    rows = {}
    for call, answer in re.findall(r"^\| `([A-Z]+ [^`]+)`[^|]* \| (.+) \|$", table, re.M):
        status = int(re.findall(r"\b(20\d)\b", answer)[-1])
        rows[call] = (status, json.loads(answer[answer.index("{") :].rstrip("`")))
    return rows


def keys(body: dict[str, Any]) -> dict[str, Any]:
    """The key structure of a body (nested objects and the first item of lists)."""
    shape: dict[str, Any] = {}
    for name, value in body.items():
        if isinstance(value, dict):
            shape[name] = keys(value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            shape[name] = [keys(value[0])]
        else:
            shape[name] = None
    return shape


def test_the_documented_success_bodies_are_the_carriers() -> None:
    docs = documented()
    assert set(docs) == {
        "POST /v1/orders",
        "GET /v1/orders/{waybill}",
        "POST /v1/orders/{waybill}/collect",
        "POST /v1/orders/{waybill}/cancel",
    }
    order = {
        "order_number": "HN-BADINH-261206-0001-r1",
        "reference": "HN-BADINH-261206-0001",
        "sender": {"name": "UBND phường Ba Đình"},
        "receiver": {"name": "Trần Văn Minh", "address": {"commune_code": "00004"}},
        "cod_amount": 0,
    }
    with (
        FakeCarrier() as carrier,
        httpx.Client(base_url=carrier.base_url, headers={"X-API-Key": API_KEY}, timeout=5) as http,
    ):
        created = http.post("/v1/orders", json=order)
        waybill = created.json()["waybill"]
        again = http.post("/v1/orders", json=order)
        with carrier.lock:
            carrier.orders[order["order_number"]]["events"].append(
                {"status": "picked_up", "occurred_at": "2026-12-06T02:00:00Z", "location": "x"}
            )
        tracked = http.get(f"/v1/orders/{waybill}")
        collected = http.post(f"/v1/orders/{waybill}/collect", json={})
        cancelled = http.post(f"/v1/orders/{waybill}/cancel", json={})
    assert (created.status_code, again.status_code) == (201, 200)
    answers = {
        "POST /v1/orders": again,
        "GET /v1/orders/{waybill}": tracked,
        "POST /v1/orders/{waybill}/collect": collected,
        "POST /v1/orders/{waybill}/cancel": cancelled,
    }
    for call, response in answers.items():
        status, example = docs[call]
        assert response.status_code == status, call
        assert keys(response.json()) == keys(example), call
