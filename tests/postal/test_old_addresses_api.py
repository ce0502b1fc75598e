"""The app's conversion of old addresses, and saved addresses given an old address."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from postal.models import SavedAddress
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

CONVERT = "/api/v1/postal/old-addresses/convert"
ADDRESSES = "/api/v1/postal/addresses"


def address(**extra: Any) -> dict[str, Any]:
    data = {"recipient_name": "Lê Thị Hoa", "phone": "0912 345 678"}
    data.update(extra)
    return data


def test_text_converts_with_codes_street_and_confidence(user_api: ApiClient) -> None:
    response = user_api.post(CONVERT, {"text": "Số 12 Nguyễn Huệ, Phuong Ben Nghe, Quan 1, TP HCM"})
    assert response.status_code == 200
    assert response.json() == {
        "status": "converted",
        "street": "Số 12 Nguyễn Huệ",
        "split": False,
        "candidates": [
            {
                "province": {"code": "79", "name": "Thành phố Hồ Chí Minh"},
                "commune": {"code": "26740", "name": "Phường Sài Gòn"},
                "confidence": 1.0,
                "main": False,
                "old": {
                    "province": {"code": "79", "name": "Thành phố Hồ Chí Minh"},
                    "district": {"code": "760", "name": "Quận 1"},
                    "wards": [{"code": "26740", "name": "Phường Bến Nghé"}],
                },
            }
        ],
    }


def test_split_ward_answers_every_candidate(user_api: ApiClient) -> None:
    response = user_api.post(CONVERT, {"codes": {"province_code": "79", "ward_code": "27169"}})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["split"]) == ("choose", True)
    assert [(c["commune"]["code"], c["main"]) for c in body["candidates"]] == [
        ("27169", True),
        ("27163", False),
    ]


def test_merged_province_alone(user_api: ApiClient) -> None:
    response = user_api.post(CONVERT, {"text": "Tỉnh Hà Giang"})
    body = response.json()
    assert body["status"] == "province_only"
    assert body["candidates"][0]["province"] == {"code": "08", "name": "Tuyên Quang"}
    assert body["candidates"][0]["commune"] is None


def test_unknown_ward_is_a_coded_error_with_suggestions(user_api: ApiClient) -> None:
    response = user_api.post(CONVERT, {"text": "Phường Bến Ngé, Quận 1, TP HCM"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "unknown_old_ward"
    assert body["details"]["written"] == "Phường Bến Ngé"
    assert body["details"]["suggestions"][0] == "Phường Bến Nghé"


def test_unknown_codes_are_a_coded_error(user_api: ApiClient) -> None:
    response = user_api.post(CONVERT, {"codes": {"province_code": "79", "ward_code": "00001"}})
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_old_unit"
    assert response.json()["details"] == [
        {
            "field": "ward_code",
            "location": "body",
            "code": "unknown_old_unit",
            "message": "Không phải đơn vị hành chính trước tháng 7/2025, "
            "hoặc không thuộc đơn vị cấp trên.",
        }
    ]


@pytest.mark.parametrize("body", [{}, {"text": "Hà Nội", "codes": {"province_code": "01"}}])
def test_text_or_codes_exactly_one(user_api: ApiClient, body: dict[str, Any]) -> None:
    response = user_api.post(CONVERT, body)
    assert response.status_code == 422
    assert response.json()["code"] == "text_or_codes"
    assert response.json()["details"] == [
        {
            "field": "text",
            "location": "body",
            "code": "text_or_codes",
            "message": response.json()["message"],
        }
    ]


def test_text_length_limit_is_a_setting(user_api: ApiClient, settings) -> None:
    settings.ADDRESS_TEXT_MAX_CHARS = 40
    text = "Phường Bến Nghé, Quận 1, TP HCM"
    at_limit = " " * (40 - len(text)) + text
    assert user_api.post(CONVERT, {"text": at_limit}).status_code == 200
    response = user_api.post(CONVERT, {"text": "x" + at_limit})
    assert response.status_code == 422
    assert response.json()["code"] == "address_too_long"
    assert response.json()["details"] == [
        {
            "field": "text",
            "location": "body",
            "code": "too_long",
            "message": "Không được quá 40 ký tự.",
            "max": 40,
        }
    ]


def test_conversions_per_minute_are_limited(
    user_api: ApiClient, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ADDRESS_CONVERSIONS_PER_MINUTE = 2
    # The window is the clock's minute: a stopped clock keeps the three requests in one.
    frozen = time.time()
    monkeypatch.setattr("postal.api.time", SimpleNamespace(time=lambda: frozen))
    for _ in range(2):
        assert user_api.post(CONVERT, {"text": "Hà Nội"}).status_code == 200
    response = user_api.post(CONVERT, {"text": "Hà Nội"})
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"


def test_conversion_needs_sign_in(api: ApiClient) -> None:
    assert api.post(CONVERT, {"text": "Hà Nội"}).status_code == 401


def test_saved_address_from_an_old_address_stores_the_new_units(user_api: ApiClient) -> None:
    text = "Số 12 Nguyễn Huệ, P. Bến Nghé, Q.1, TP.HCM"
    response = user_api.post(ADDRESSES, address(old_address=text))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["commune_code"], body["province_code"]) == ("26740", "79")
    assert (body["street"], body["entered_address"]) == ("Số 12 Nguyễn Huệ", text)
    saved = SavedAddress.objects.get(pk=body["id"])
    assert (saved.commune_code, saved.entered_address) == ("26740", text)


def test_saved_address_in_a_split_ward_asks_and_saves_nothing(user_api: ApiClient) -> None:
    text = "45 Ba Tháng Hai, Phường 14, Quận 10, TP HCM"
    response = user_api.post(ADDRESSES, address(old_address=text))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "address_needs_choice"
    codes = [c["commune"]["code"] for c in body["details"]["conversion"]["candidates"]]
    assert codes == ["27169", "27163"]
    assert SavedAddress.objects.count() == 0
    # The citizen chose Hòa Hưng: the choice is kept with the text as written.
    response = user_api.post(ADDRESSES, address(old_address=text, commune_code="27163"))
    assert response.status_code == 201
    assert (response.json()["commune_code"], response.json()["street"]) == (
        "27163",
        "45 Ba Tháng Hai",
    )


def test_a_commune_that_is_not_a_candidate_is_refused(user_api: ApiClient) -> None:
    response = user_api.post(
        ADDRESSES, address(old_address="Phường 14, Quận 10, TP HCM", commune_code="00070")
    )
    assert response.status_code == 422
    assert response.json()["code"] == "commune_not_a_candidate"
    assert SavedAddress.objects.count() == 0


def test_province_alone_needs_the_commune_then_accepts_one_of_it(user_api: ApiClient) -> None:
    response = user_api.post(ADDRESSES, address(old_address="Tỉnh Hà Giang", street="Tổ 1"))
    assert response.status_code == 422
    assert response.json()["code"] == "address_needs_commune"
    tuyen_quang = "02269"  # a commune of Tuyên Quang, which Hà Giang joined
    response = user_api.post(
        ADDRESSES, address(old_address="Tỉnh Hà Giang", street="Tổ 1", commune_code=tuyen_quang)
    )
    assert response.status_code == 201, response.json()
    assert response.json()["province_code"] == "08"


def test_without_old_address_street_and_commune_are_required(user_api: ApiClient) -> None:
    response = user_api.post(ADDRESSES, address())
    assert response.status_code == 422
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [
        ("street", "required"),
        ("commune_code", "required"),
    ]
    assert SavedAddress.objects.count() == 0


def test_conversion_still_answers_when_redis_is_down(user_api: ApiClient, settings) -> None:
    # A closed port: counting fails, the conversion (packaged data only) goes on.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    settings.ADDRESS_CONVERSIONS_PER_MINUTE = 0
    response = user_api.post(CONVERT, {"text": "Tỉnh Hà Giang"})
    assert response.status_code == 200
    assert response.json()["candidates"][0]["province"]["code"] == "08"
