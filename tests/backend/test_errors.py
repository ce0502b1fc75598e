"""Every failure kind answers with the one documented error shape."""

from __future__ import annotations

import pytest

from tests.backend import conventions_api
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.backend.conventions_api")]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def test_validation_error_lists_each_field(api: ApiClient) -> None:
    response = api.post("/api/test/things", {"name": "x", "count": 99})
    body = assert_error(response, 422, "validation_error")
    fields = {d["field"]: d for d in body["details"]}
    assert set(fields) == {"name", "count"}
    assert fields["name"]["code"] == "string_too_short"
    assert fields["count"]["code"] == "less_than_equal"


def test_missing_field_message_is_vietnamese_by_default(api: ApiClient) -> None:
    body = assert_error(api.post("/api/test/things", {}), 422, "validation_error")
    assert body["message"] == "Một số trường không hợp lệ."
    assert body["details"] == [
        {
            "field": "name",
            "location": "body",
            "code": "missing",
            "message": "Trường này là bắt buộc.",
        }
    ]


def test_messages_follow_accept_language_english(api: ApiClient) -> None:
    english = ApiClient(language="en")
    body = assert_error(english.post("/api/test/things", {}), 422, "validation_error")
    assert body["message"] == "Some fields are not valid."
    assert body["details"][0]["message"] == "This field is required."


def test_malformed_json_is_400(api: ApiClient) -> None:
    response = api.post("/api/test/things", raw=b'{"name": "ab",')
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"name": "a\\u0000b", "count": 1}', "name"),
        (b'{"name": "ok", "extra": {"list": ["x", {"deep": "\\u0000"}]}}', "extra.list.1.deep"),
        (b'{"name": "ok", "ke\\u0000y": 1}', "key"),
    ],
)
def test_nul_anywhere_in_a_json_body_is_422_naming_the_field(api: ApiClient, raw, field) -> None:
    before = conventions_api.calls["create"]
    body = assert_error(api.post("/api/test/things", raw=raw), 422, "validation_error")
    assert body["details"] == [
        {
            "field": field,
            "location": "body",
            "code": "nul_character",
            "message": "Không được chứa ký tự NUL.",
        }
    ]
    assert conventions_api.calls["create"] == before


def test_an_escaped_backslash_before_u0000_is_text_not_nul(api: ApiClient) -> None:
    # JSON "a\\u0000" is the six characters \u0000 after an "a": no NUL in it.
    response = api.post("/api/test/things", raw=b'{"name": "a\\\\u0000"}')
    assert response.status_code == 201, response
    assert response.json()["name"] == "a\\u0000"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"name": "ab", "count": 1, "name": "cd"}', "name"),
        (b'{"name": "ab", "extra": {"x": 1, "y": 2, "x": 3}}', "x"),
        (b'{"name": "ab", "extra": [{"k": 1}, {"k": 1, "k": 1}]}', "k"),
    ],
    ids=["top-level", "nested", "in-a-list-same-value"],
)
def test_a_key_given_twice_is_malformed_json_naming_it_and_nothing_is_created(
    api: ApiClient, raw: bytes, key: str
) -> None:
    # Python would keep the last value, other parsers the first: refused, not guessed.
    before = conventions_api.calls["create"]
    body = assert_error(api.post("/api/test/things", raw=raw), 400, "malformed_json")
    assert body["message"] == "Nội dung yêu cầu không phải JSON hợp lệ."
    assert body["details"] == [
        {
            "field": key,
            "location": "body",
            "code": "duplicate_key",
            "message": "Khóa này xuất hiện hai lần trong cùng một đối tượng.",
        }
    ]
    assert conventions_api.calls["create"] == before


def test_the_same_key_in_two_objects_is_not_a_duplicate(api: ApiClient) -> None:
    raw = b'{"name": "ab", "extra": {"name": 1, "inner": {"name": 2}}}'
    response = api.post("/api/test/things", raw=raw)
    assert response.status_code == 201, response


def test_invalid_utf8_body_is_400(api: ApiClient) -> None:
    response = api.post("/api/test/things", raw=b"\xff\xfe\x00")
    assert_error(response, 400, "malformed_json")


def test_missing_token_is_401_with_challenge(api: ApiClient) -> None:
    response = api.get("/api/test/private")
    assert_error(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_garbage_token_is_401() -> None:
    response = ApiClient(token="not-a-token").get("/api/test/private")
    assert_error(response, 401, "not_authenticated")


def test_valid_token_passes() -> None:
    user = make_user("+84911222333")
    _, tokens = sign_in(user)
    response = ApiClient(token=tokens.access_token).get("/api/test/private")
    assert response.status_code == 200
    assert response.json() == {"phone": "+84911222333"}


def test_forbidden_is_403(api: ApiClient) -> None:
    assert_error(api.get("/api/test/forbidden"), 403, "permission_denied")


def test_unknown_api_route_is_json_404(api: ApiClient) -> None:
    assert_error(api.get("/api/v1/no-such-thing"), 404, "route_not_found")
    assert_error(api.get("/api/test/no-such-thing"), 404, "route_not_found")


def test_wrong_method_is_405_with_allow(api: ApiClient) -> None:
    response = api.delete("/api/test/things")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_conflict_is_409(api: ApiClient) -> None:
    assert_error(api.get("/api/test/conflict"), 409, "thing_busy")


def test_body_over_limit_is_413_and_not_parsed(api: ApiClient, settings) -> None:
    settings.API_MAX_JSON_BODY_BYTES = 100
    from tests.backend import conventions_api

    before = conventions_api.calls["create"]
    response = api.post("/api/test/things", {"name": "x" * 200})
    body = assert_error(response, 413, "payload_too_large")
    assert body["details"] == {"limit_bytes": 100}
    assert conventions_api.calls["create"] == before


def test_body_at_limit_is_accepted(api: ApiClient, settings) -> None:
    payload = b'{"name": "abc"}'
    settings.API_MAX_JSON_BODY_BYTES = len(payload)
    response = api.post("/api/test/things", raw=payload)
    assert response.status_code == 201


def test_rate_limited_is_429_with_retry_after(api: ApiClient) -> None:
    response = api.get("/api/test/limited")
    body = assert_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "42"
    assert body["details"] == {"retry_after": 42}


def test_unavailable_is_503(api: ApiClient) -> None:
    assert_error(api.get("/api/test/unavailable"), 503, "service_unavailable")


def test_database_unreachable_is_503_with_retry_after(api: ApiClient) -> None:
    response = api.get("/api/test/db-down")
    assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert b"127.0.0.1" not in response.content


@pytest.mark.parametrize("path", ["/api/test/pool-timeout", "/api/test/db-down-while-handling"])
def test_a_database_error_under_any_wrapper_is_503(api: ApiClient, path: str) -> None:
    response = api.get(path)
    assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"


def test_a_value_the_database_refuses_is_422_and_logged_without_it(api: ApiClient, caplog) -> None:
    body = assert_error(api.get("/api/test/db-refuses"), 422, "invalid_value")
    assert body["details"] is None
    [record] = [r for r in caplog.records if r.getMessage().startswith("database refused")]
    assert record.getMessage() == "database refused a value: DataError"


def test_redis_unreachable_is_503(api: ApiClient) -> None:
    assert_error(api.get("/api/test/redis-down"), 503, "cache_unavailable")


def test_unexpected_exception_is_500_without_internals(api: ApiClient, caplog) -> None:
    response = api.get("/api/test/crash")
    assert_error(response, 500, "internal_error")
    assert b"hunter2" not in response.content
    assert b"Traceback" not in response.content


def test_every_response_has_a_request_id(api: ApiClient) -> None:
    first = api.get("/api/test/forbidden")
    second = api.get("/api/test/forbidden")
    assert len(first.headers["X-Request-ID"]) == 32
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_sane_incoming_request_id_is_kept(api: ApiClient) -> None:
    response = api.get("/api/test/forbidden", headers={"X-Request-ID": "trace-1234-abcd"})
    assert response.headers["X-Request-ID"] == "trace-1234-abcd"
    forged = api.get("/api/test/forbidden", headers={"X-Request-ID": "<script>"})
    assert forged.headers["X-Request-ID"] != "<script>"
