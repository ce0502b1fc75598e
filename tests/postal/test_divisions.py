"""Provinces and communes of the 2025 reform, listing and diacritic-free search."""

from __future__ import annotations

import pytest

from postal import divisions
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_the_package_gives_34_provinces_and_3321_communes() -> None:
    assert len(divisions.provinces()) == 34
    assert len(divisions.communes()) == 3321
    assert sum(len(units) for units in divisions.communes_by_province().values()) == 3321


def test_fold_strips_diacritics_and_maps_d_stroke() -> None:
    assert divisions.fold("  Đắk  Lắk ") == "dak lak"
    assert divisions.fold("Thành phố Hồ Chí Minh") == "thanh pho ho chi minh"


def test_list_provinces_in_code_order_with_official_codes(api: ApiClient) -> None:
    response = api.get("/api/v1/postal/provinces")
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 34
    assert items[0] == {
        "code": "01",
        "name": "Thành phố Hà Nội",
        "division_type": "thành phố trung ương",
    }
    assert items[-1]["code"] == "96"
    assert items[-1]["name"] == "Cà Mau"


@pytest.mark.parametrize("query", ["dak lak", "Đắk Lắk", "ĐẮK", "dak"])
def test_search_provinces_with_or_without_diacritics(api: ApiClient, query: str) -> None:
    response = api.get("/api/v1/postal/provinces", query={"q": query})
    assert [p["code"] for p in response.json()["items"]] == ["66"]


def test_search_provinces_matches_every_word(api: ApiClient) -> None:
    response = api.get("/api/v1/postal/provinces", query={"q": "ho minh"})
    assert [p["code"] for p in response.json()["items"]] == ["79"]


def test_list_a_provinces_communes(api: ApiClient) -> None:
    response = api.get("/api/v1/postal/provinces/01/communes")
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == len(divisions.communes_by_province()["01"])
    assert items[0] == {
        "code": "00004",
        "name": "Phường Ba Đình",
        "division_type": "phường",
        "province_code": "01",
    }
    assert all(item["province_code"] == "01" for item in items)


@pytest.mark.parametrize("query", ["hoan kiem", "Hoàn Kiếm", "HOAN KIEM"])
def test_search_communes_with_or_without_diacritics(api: ApiClient, query: str) -> None:
    response = api.get("/api/v1/postal/provinces/01/communes", query={"q": query})
    assert [(c["code"], c["name"]) for c in response.json()["items"]] == [
        ("00070", "Phường Hoàn Kiếm")
    ]


def test_commune_search_stays_in_the_province(api: ApiClient) -> None:
    # Hoàn Kiếm is in Hà Nội, not in Cà Mau.
    response = api.get("/api/v1/postal/provinces/96/communes", query={"q": "hoan kiem"})
    assert response.json()["items"] == []


def test_unknown_province_is_404(api: ApiClient) -> None:
    response = api.get("/api/v1/postal/provinces/02/communes")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_province"


def test_commune_detail_with_its_province(api: ApiClient) -> None:
    response = api.get("/api/v1/postal/communes/31825")
    assert response.status_code == 200
    assert response.json() == {
        "code": "31825",
        "name": "Phường Bạc Liêu",
        "division_type": "phường",
        "province_code": "96",
        "province": {"code": "96", "name": "Cà Mau", "division_type": "tỉnh"},
    }


@pytest.mark.parametrize("code", ["99999", "abc", "123456"])
def test_unknown_commune_is_404(api: ApiClient, code: str) -> None:
    response = api.get(f"/api/v1/postal/communes/{code}")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_commune"
