"""A password may not be the user's own name or phone number (password_too_similar).

Django's similarity validator compares with username, first_name, last_name and
email by default; this user model has none of them, so the settings name its
attributes. Each flow that sets a password is checked: sign-up, change, reset.
"""

from __future__ import annotations

import pytest

from auth.models import User
from tests.accounts.conftest import PASSWORD, all_sms, last_code, register
from tests.conftest import ApiClient, make_user, sign_in

PHONE = "+84912345678"
NAME = "Nguyễn Thị Lan"

# The name as registered, as typed without marks and spaces, the number both ways.
SIMILAR = [NAME, "nguyen thi lan", "NguyenThiLan", "lan@0912345678", "+84912345678x"]


def similarity_errors(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response
    return [d for d in response.json()["details"] if d["code"] == "password_too_similar"]


@pytest.mark.parametrize("password", SIMILAR)
def test_sign_up_with_a_password_like_the_name_or_number_is_refused(
    api: ApiClient, db: None, password: str
) -> None:
    response = register(api, "0912345678", full_name=NAME, password=password)

    [error] = similarity_errors(response)
    assert error["field"] == "password"
    assert not User.objects.filter(phone=PHONE).exists()
    assert all_sms() == []


@pytest.mark.parametrize("password", SIMILAR)
def test_changing_to_a_password_like_the_name_or_number_is_refused(db: None, password: str) -> None:
    user = make_user(PHONE, full_name=NAME, password=PASSWORD)
    _, tokens = sign_in(user)
    client = ApiClient(token=tokens.access_token)

    response = client.post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": password},
    )

    [error] = similarity_errors(response)
    assert error["field"] == "new_password"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("password", SIMILAR)
def test_resetting_to_a_password_like_the_name_or_number_is_refused(
    api: ApiClient, db: None, password: str
) -> None:
    user = make_user(PHONE, full_name=NAME, password=PASSWORD)
    challenge = api.post("/api/v1/auth/password/reset", {"phone": PHONE}).json()

    response = api.post(
        "/api/v1/auth/password/reset/verify",
        {
            "challenge_id": challenge["challenge_id"],
            "code": last_code(PHONE),
            "new_password": password,
        },
    )

    [error] = similarity_errors(response)
    assert error["field"] == "new_password"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_password_unlike_the_name_and_number_is_accepted(api: ApiClient, db: None) -> None:
    response = register(api, "0912345678", full_name=NAME, password="mây-trắng-bay-2026")

    assert response.status_code == 202


def test_changing_to_a_password_like_the_citizen_id_is_refused(db: None) -> None:
    user = make_user(PHONE, full_name=NAME, password=PASSWORD)
    User.objects.filter(pk=user.pk).update(citizen_id="001090012345")
    _, tokens = sign_in(user)
    client = ApiClient(token=tokens.access_token)

    response = client.post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": "001090012345x"},
    )

    [error] = similarity_errors(response)
    assert error["field"] == "new_password"


def test_the_guide_names_every_attribute_a_password_is_compared_with() -> None:
    """accounts.md's `password_too_similar` sentence, against the settings' list."""
    from pathlib import Path

    from django.conf import settings

    [validator] = [v for v in settings.AUTH_PASSWORD_VALIDATORS if "Similarity" in v["NAME"]]
    said = {
        "full_name": "the full name",
        "full_name_unaccented": "without tone marks",
        "phone": "`+84…`",
        "phone_national": "`0…`",
        "citizen_id": "the citizen ID number",
    }
    guide = (Path(settings.BASE_DIR) / "mobile_api_docs" / "accounts.md").read_text()
    sentence = " ".join(guide.split("`password_too_similar`: ", 1)[1].split(";", 1)[0].split())
    assert set(validator["OPTIONS"]["user_attributes"]) == set(said)
    assert [name for name, words in said.items() if words not in sentence] == []
