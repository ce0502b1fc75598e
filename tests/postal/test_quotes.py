"""Quotes: zone by province, weight class, cash on delivery, expected days."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dossiers.models import Dossier, Procedure
from tests.postal.conftest import (
    BAC_NINH_COMMUNE,
    CA_MAU_COMMUNE,
    HANOI_COMMUNE,
    Citizen,
    make_address,
)

pytestmark = pytest.mark.django_db


def quote(citizen: Citizen, commune: str, direction: str = "result") -> dict:
    address = make_address(citizen.user, commune)
    response = citizen.api.get(
        f"/api/v1/postal/dossiers/{citizen.dossier.id}/quote",
        query={"address_id": str(address.id), "direction": direction},
    )
    assert response.status_code == 200, response
    return response.json()


@pytest.mark.parametrize(
    ("commune", "zone", "fee", "days"),
    [
        (HANOI_COMMUNE, "local", 16500, 1),  # agency in Hà Nội, same province
        (BAC_NINH_COMMUNE, "near", 22000, 2),  # Red River Delta too
        (CA_MAU_COMMUNE, "far", 27500, 4),
    ],
)
def test_fee_by_zone(citizen: Citizen, commune: str, zone: str, fee: int, days: int) -> None:
    assert quote(citizen, commune) == {
        "carrier": "vnpost",
        "direction": "result",
        "zone": zone,
        "weight_grams": 200,
        "weight_class_grams": 250,
        "fee": fee,
        "cod_amount": 0,
        "expected_days": days,
        "currency": "VND",
    }


@pytest.mark.parametrize(
    ("weight", "weight_class", "fee"), [(250, 250, 27500), (251, 500, 33000), (5000, 5000, 99000)]
)
def test_weight_class_boundaries(citizen: Citizen, settings, weight, weight_class, fee) -> None:
    settings.POSTAL_RESULT_WEIGHT_GRAMS = weight
    data = quote(citizen, CA_MAU_COMMUNE)
    assert (data["weight_class_grams"], data["fee"]) == (weight_class, fee)


def test_heavier_than_the_last_class_is_422(citizen: Citizen, settings) -> None:
    settings.POSTAL_RESULT_WEIGHT_GRAMS = 5001
    address = make_address(citizen.user)
    response = citizen.api.get(
        f"/api/v1/postal/dossiers/{citizen.dossier.id}/quote",
        query={"address_id": str(address.id)},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "too_heavy"


def test_cod_when_the_fee_is_paid_on_receipt(db: None) -> None:
    citizen = Citizen(procedure={"fee_amount": 50000, "fee_timing": Procedure.FeeTiming.AFTER})
    assert quote(citizen, HANOI_COMMUNE)["cod_amount"] == 50000


@pytest.mark.parametrize(
    ("amount", "timing"),
    [(50000, Procedure.FeeTiming.BEFORE), (0, Procedure.FeeTiming.AFTER)],
)
def test_no_cod_when_paid_before_or_free(db: None, amount: int, timing: str) -> None:
    citizen = Citizen(procedure={"fee_amount": amount, "fee_timing": timing})
    assert quote(citizen, HANOI_COMMUNE)["cod_amount"] == 0


def test_pickup_quote_uses_the_paper_weight_and_no_cod(db: None) -> None:
    citizen = Citizen(
        channel=Dossier.Channel.POSTAL,
        procedure={"fee_amount": 50000, "fee_timing": Procedure.FeeTiming.AFTER},
    )
    data = quote(citizen, CA_MAU_COMMUNE, "pickup")
    assert (data["direction"], data["weight_grams"], data["weight_class_grams"]) == (
        "pickup",
        500,
        500,
    )
    assert (data["fee"], data["cod_amount"]) == (33000, 0)


def test_quote_refused_when_postal_return_not_allowed(db: None) -> None:
    citizen = Citizen(procedure={"postal_return_allowed": False})
    response = citizen.api.get(
        f"/api/v1/postal/dossiers/{citizen.dossier.id}/quote",
        query={"address_id": str(citizen.address.id)},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "postal_return_not_allowed"


def test_tariff_is_configurable_per_carrier(citizen: Citizen, settings, tmp_path: Path) -> None:
    table = {
        "vnpost": {
            "currency": "VND",
            "weight_classes_grams": [1000],
            "zones": {
                "local": {"fees": [11000], "days": 1},
                "near": {"fees": [12000], "days": 3},
                "far": {"fees": [13000], "days": 5},
            },
        }
    }
    path = tmp_path / "tariffs.json"
    path.write_text(json.dumps(table))
    settings.POSTAL_TARIFF_FILE = str(path)
    data = quote(citizen, CA_MAU_COMMUNE)
    assert (data["fee"], data["expected_days"], data["weight_class_grams"]) == (13000, 5, 1000)


def test_quote_for_someone_elses_dossier_is_404(citizen: Citizen) -> None:
    other = Citizen()
    response = citizen.api.get(
        f"/api/v1/postal/dossiers/{other.dossier.id}/quote",
        query={"address_id": str(citizen.address.id)},
    )
    assert response.status_code == 404
