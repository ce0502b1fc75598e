"""Provinces and communes after the 1 July 2025 reform (two levels, official codes).

Data from the `vietnam-provinces` package: 34 provinces/cities and 3,321
communes/wards/special zones. Codes are the official ones, written as strings
of fixed width like the national registry does: provinces "01", communes "00004".

Addresses in the old three-level units (before July 2025) are converted to these by
`backend/old_addresses.py` (mapping data of `vietnamadminunits`, joined to the units
here by name; see README, "Old addresses").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from vietnam_provinces import Province, Ward

from backend.text import fold


@dataclass(frozen=True)
class ProvinceUnit:
    code: str
    name: str
    division_type: str
    search_key: str


@dataclass(frozen=True)
class CommuneUnit:
    code: str
    name: str
    division_type: str
    province_code: str
    search_key: str


def province_code(value: int) -> str:
    return f"{value:02d}"


def commune_code(value: int) -> str:
    return f"{value:05d}"


@functools.cache
def provinces() -> dict[str, ProvinceUnit]:
    units = sorted(Province.iter_all(), key=lambda p: int(p.code))
    return {
        province_code(int(p.code)): ProvinceUnit(
            code=province_code(int(p.code)),
            name=p.name,
            division_type=p.division_type.value,
            search_key=fold(p.name),
        )
        for p in units
    }


@functools.cache
def communes() -> dict[str, CommuneUnit]:
    units = sorted(Ward.iter_all(), key=lambda w: int(w.code))
    return {
        commune_code(int(w.code)): CommuneUnit(
            code=commune_code(int(w.code)),
            name=w.name,
            division_type=w.division_type.value,
            province_code=province_code(int(w.province_code)),
            search_key=fold(w.name),
        )
        for w in units
    }


@functools.cache
def communes_by_province() -> dict[str, list[CommuneUnit]]:
    grouped: dict[str, list[CommuneUnit]] = {code: [] for code in provinces()}
    for unit in communes().values():
        grouped[unit.province_code].append(unit)
    return grouped


def _normalise_code(code: str, width: int) -> str | None:
    code = code.strip()
    if not (code.isascii() and code.isdigit()) or len(code) > width:
        return None
    return code.zfill(width)


def get_province(code: str) -> ProvinceUnit | None:
    normalised = _normalise_code(code, 2)
    return provinces().get(normalised) if normalised else None


def get_commune(code: str) -> CommuneUnit | None:
    normalised = _normalise_code(code, 5)
    return communes().get(normalised) if normalised else None


def _matches(search_key: str, query: str) -> bool:
    return all(word in search_key for word in query.split())


def search_provinces(query: str | None) -> list[ProvinceUnit]:
    units = list(provinces().values())
    folded = fold(query or "")
    return [u for u in units if _matches(u.search_key, folded)] if folded else units


def search_communes(province: str, query: str | None) -> list[CommuneUnit]:
    units = communes_by_province().get(province, [])
    folded = fold(query or "")
    return [u for u in units if _matches(u.search_key, folded)] if folded else units
