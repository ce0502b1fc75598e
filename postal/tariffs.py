"""Postage: zone by province, weight class, fee and expected days per carrier.

Zones: `local` (same province), `near` (same or neighbouring socio-economic
region), `far` (anything else, e.g. Hà Nội to Cà Mau). The fee table of each
carrier is a JSON file (settings.POSTAL_TARIFF_FILE), so operations can change
prices without a release; see postal/tariffs.json for the shape.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

# The six socio-economic regions, with the 34 provinces of July 2025.
REGIONS: dict[str, set[str]] = {
    "northern_midlands": {"04", "08", "11", "12", "14", "15", "19", "20", "25"},
    "red_river_delta": {"01", "22", "24", "31", "33", "37"},
    "central_coast": {"38", "40", "42", "44", "46", "48", "51", "56"},
    "central_highlands": {"52", "66", "68"},
    "south_east": {"75", "79", "80"},
    "mekong_delta": {"82", "86", "91", "92", "96"},
}
NEIGHBOURING_REGIONS: set[frozenset[str]] = {
    frozenset(pair)
    for pair in [
        ("northern_midlands", "red_river_delta"),
        ("northern_midlands", "central_coast"),
        ("red_river_delta", "central_coast"),
        ("central_coast", "central_highlands"),
        ("central_highlands", "south_east"),
        ("south_east", "mekong_delta"),
    ]
}
REGION_OF: dict[str, str] = {code: region for region, codes in REGIONS.items() for code in codes}


class TariffError(Exception):
    """No fee applies (unknown carrier, or heavier than the largest weight class)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Price:
    zone: str
    weight_class_grams: int
    fee: int
    expected_days: int
    currency: str


def zone_between(from_province: str, to_province: str) -> str:
    if from_province == to_province:
        return "local"
    a, b = REGION_OF.get(from_province), REGION_OF.get(to_province)
    if a is not None and b is not None and (a == b or frozenset((a, b)) in NEIGHBOURING_REGIONS):
        return "near"
    return "far"


@functools.cache
def _load(path: str, mtime: float) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return loaded


def tariff_table(carrier: str) -> dict[str, Any] | None:
    path = Path(settings.POSTAL_TARIFF_FILE)
    table: dict[str, Any] | None = _load(str(path), path.stat().st_mtime).get(carrier)
    return table


def price(carrier: str, from_province: str, to_province: str, weight_grams: int) -> Price:
    table = tariff_table(carrier)
    if table is None:
        raise TariffError("no_tariff")
    zone = zone_between(from_province, to_province)
    classes: list[int] = table["weight_classes_grams"]
    for index, upper in enumerate(classes):
        if weight_grams <= upper:
            entry = table["zones"][zone]
            return Price(
                zone=zone,
                weight_class_grams=upper,
                fee=int(entry["fees"][index]),
                expected_days=int(entry["days"]),
                currency=str(table.get("currency", "VND")),
            )
    raise TariffError("too_heavy")
