"""Saved addresses: phone in E.164, province from the commune, field errors."""

from __future__ import annotations

from typing import Any

import pytest

from auth.phone import parse_phone
from postal.models import SavedAddress
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

URL = "/api/v1/postal/addresses"


def body(**extra: Any) -> dict[str, Any]:
    data = {
        "label": "Nhà",
        "recipient_name": "Lê Thị Hoa",
        "phone": "0912 345 678",
        "street": "Số 12 phố Huế",
        "commune_code": "00070",
    }
    data.update(extra)
    return data


def test_create_normalises_phone_and_derives_province(user_api: ApiClient, user) -> None:
    response = user_api.post(URL, body())
    assert response.status_code == 201
    data = response.json()
    assert data["phone"] == "+84912345678"
    assert data["commune_code"] == "00070"
    assert data["commune_name"] == "Phường Hoàn Kiếm"
    assert data["province_code"] == "01"
    assert data["province_name"] == "Thành phố Hà Nội"
    saved = SavedAddress.objects.get(pk=data["id"])
    assert (saved.user_id, saved.phone, saved.province_code) == (user.id, "+84912345678", "01")


def test_matching_province_is_accepted(user_api: ApiClient) -> None:
    response = user_api.post(URL, body(province_code="01"))
    assert response.status_code == 201


def test_unknown_commune_is_a_field_error(user_api: ApiClient) -> None:
    response = user_api.post(URL, body(commune_code="99999"))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [
        ("commune_code", "unknown_commune")
    ]
    assert SavedAddress.objects.count() == 0


def test_commune_outside_the_given_province_is_a_field_error(user_api: ApiClient) -> None:
    # 00070 is in Hà Nội (01), not in Cà Mau (96).
    response = user_api.post(URL, body(province_code="96"))
    assert response.status_code == 422
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [
        ("commune_code", "commune_not_in_province")
    ]
    assert SavedAddress.objects.count() == 0


def test_unknown_province_is_a_field_error(user_api: ApiClient) -> None:
    response = user_api.post(URL, body(province_code="03"))
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [
        ("province_code", "unknown_province")
    ]


@pytest.mark.parametrize(
    "phone",
    [
        "0912345678",
        "+84912345678",
        "84912345678",
        "0912.345.678",
        "0084 912 345 678",
        "+84 912-345-678",
        "(+84) 912.345.678",
    ],
)
def test_recipient_phone_follows_the_account_phone_rule(user_api: ApiClient, phone: str) -> None:
    # One rule for every phone (auth/phone.py): the forms sign-up accepts, stored as E.164.
    assert parse_phone(phone) == "+84912345678"
    response = user_api.post(URL, body(phone=phone))
    assert response.status_code == 201
    assert response.json()["phone"] == "+84912345678"


@pytest.mark.parametrize(
    "phone",
    [
        "02438253000",
        "12345",
        "+14155550123",
        "not a phone",
        # Read past their letters, these were a mobile number.
        "SĐT 0912 345 678",
        "Anh Nam 0912345678",
        "O912345678",
    ],
)
def test_phone_must_be_a_vietnamese_mobile(user_api: ApiClient, phone: str) -> None:
    response = user_api.post(URL, body(phone=phone))
    assert response.status_code == 422
    assert [(d["field"], d["code"]) for d in response.json()["details"]] == [
        ("phone", "invalid_phone")
    ]


def test_every_wrong_field_is_reported_at_once(user_api: ApiClient) -> None:
    response = user_api.post(URL, body(phone="123", commune_code="99999"))
    assert [(d["field"], d["location"], d["code"]) for d in response.json()["details"]] == [
        ("phone", "body", "invalid_phone"),
        ("commune_code", "body", "unknown_commune"),
    ]


def test_address_limit_boundary(user_api: ApiClient, settings) -> None:
    settings.POSTAL_MAX_ADDRESSES_PER_USER = 2
    assert user_api.post(URL, body()).status_code == 201
    assert user_api.post(URL, body()).status_code == 201  # at the limit
    response = user_api.post(URL, body())
    assert response.status_code == 409
    assert response.json()["code"] == "too_many_addresses"
    assert response.json()["details"] == {"limit": 2}
    assert SavedAddress.objects.count() == 2


def test_create_with_idempotency_key_creates_once(user_api: ApiClient) -> None:
    key = {"Idempotency-Key": "addr-1"}
    first = user_api.post(URL, body(), headers=key)
    second = user_api.post(URL, body(), headers=key)
    assert first.json() == second.json()
    assert SavedAddress.objects.count() == 1


def test_list_update_delete_own_addresses(user_api: ApiClient) -> None:
    created = user_api.post(URL, body()).json()
    listed = user_api.get(URL).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    updated = user_api.put(f"{URL}/{created['id']}", body(commune_code="31825", phone="0987654321"))
    assert updated.status_code == 200
    assert (updated.json()["province_code"], updated.json()["phone"]) == ("96", "+84987654321")
    assert user_api.delete(f"{URL}/{created['id']}").status_code == 204
    assert SavedAddress.objects.count() == 0


def test_other_users_address_is_404(user_api: ApiClient) -> None:
    created = user_api.post(URL, body()).json()
    stranger = ApiClient(token=sign_in(make_user())[1].access_token)
    assert stranger.get(f"{URL}/{created['id']}").status_code == 404
    assert stranger.put(f"{URL}/{created['id']}", body()).status_code == 404
    assert stranger.delete(f"{URL}/{created['id']}").status_code == 404
    assert stranger.get(URL).json()["items"] == []
    assert SavedAddress.objects.count() == 1


def test_addresses_need_sign_in(api: ApiClient) -> None:
    assert api.get(URL).status_code == 401
    assert api.post(URL, body()).status_code == 401


def test_field_errors_speak_vietnamese_by_default_and_english_on_request(user) -> None:
    token = sign_in(user)[1].access_token
    vi = ApiClient(token=token).post(URL, body(commune_code="99999"))
    en = ApiClient(token=token, language="en").post(URL, body(commune_code="99999"))
    assert vi.json()["details"][0]["message"] == "Không có xã, phường nào có mã này."
    assert en.json()["details"][0]["message"] == "There is no commune or ward with this code."
