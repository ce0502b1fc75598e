from tests.conftest import ApiClient


def test_me_describes_the_account(user, user_api) -> None:
    body = user_api.get("/api/v1/auth/me").json()
    assert body["id"] == str(user.id)
    assert body["phone"] == user.phone
    assert body["full_name"] == "Lê Thị Hoa"
    assert body["language"] == "vi"
    assert body["verification_level"] == 1
    assert body["totp_enabled"] is False
    assert body["recovery_codes_left"] == 0
    assert body["citizen_id"] is None


def test_patch_me_changes_name_and_language(user, user_api) -> None:
    response = user_api.patch("/api/v1/auth/me", {"full_name": "Lê Hoa", "language": "en"})
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.full_name, user.language) == ("Lê Hoa", "en")


def test_patch_me_refuses_an_unknown_language(user, user_api) -> None:
    response = user_api.patch("/api/v1/auth/me", {"language": "fr"})
    assert response.status_code == 422
    user.refresh_from_db()
    assert user.language == "vi"


def test_me_needs_a_token(db) -> None:
    response = ApiClient().get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
