"""Agency API: old-unit codes (before July 2025) answered with the 2025 units."""

from __future__ import annotations

import pytest

from backend.models import IdempotencyRecord
from dossiers.models import Agency
from tests.conftest import ApiClient
from tests.dossiers.conftest import AgencyClient

pytestmark = pytest.mark.django_db

URL = "/api/v1/agency/addresses/convert"


def test_codes_are_answered_in_order_with_splits_and_errors(
    agency: Agency, agency_client: AgencyClient
) -> None:
    items = [
        {"province_code": "79", "district_code": "760", "ward_code": "26740"},  # Bến Nghé
        {"province_code": "79", "ward_code": "27169"},  # Phường 14, Quận 10: split
        {"province_code": "02"},  # Hà Giang alone
        {"province_code": "79", "ward_code": "00001"},  # Phúc Xá is in Hà Nội
    ]
    response = agency_client.post(URL, {"items": items})
    assert response.status_code == 200, response.json()
    answers = response.json()["items"]
    assert [a["input"]["ward_code"] for a in answers] == ["26740", "27169", None, "00001"]
    first = answers[0]["conversion"]
    assert first["status"] == "converted"
    assert first["candidates"][0]["commune"] == {"code": "26740", "name": "Phường Sài Gòn"}
    assert first["candidates"][0]["province"] == {"code": "79", "name": "Thành phố Hồ Chí Minh"}
    split = answers[1]["conversion"]
    assert (split["status"], split["split"]) == ("choose", True)
    assert [c["commune"]["code"] for c in split["candidates"]] == ["27169", "27163"]
    assert answers[2]["conversion"]["status"] == "province_only"
    assert answers[2]["conversion"]["candidates"][0]["province"]["code"] == "08"
    assert answers[3]["conversion"] is None
    assert answers[3]["error"]["code"] == "unknown_old_unit"
    assert IdempotencyRecord.objects.count() == 0  # nothing recorded: it changes nothing


def test_batch_size_limit_is_a_setting(agency_client: AgencyClient, settings) -> None:
    settings.ADDRESS_AGENCY_BATCH_MAX = 2
    item = {"province_code": "01"}
    assert agency_client.post(URL, {"items": [item, item]}).status_code == 200
    response = agency_client.post(URL, {"items": [item, item, item]})
    assert response.status_code == 422
    assert response.json()["code"] == "too_many_items"


def test_unsigned_requests_are_refused(api: ApiClient) -> None:
    response = api.post(URL, {"items": [{"province_code": "01"}]})
    assert response.status_code == 401


def test_a_bad_signature_is_refused(agency_client: AgencyClient) -> None:
    response = agency_client.post(URL, {"items": [{"province_code": "01"}]}, secret="wrong")
    assert response.status_code == 401
