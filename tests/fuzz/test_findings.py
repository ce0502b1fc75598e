"""What the fuzzer found, pinned down: each was a 5xx or a request wrongly accepted."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from auth.models import Organisation, User
from payments.models import Payment, PaymentAnomaly
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_dossier, make_procedure

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> ApiClient:
    return ApiClient(token=sign_in(user)[1].access_token, language="en")


def test_multipart_without_boundary_on_an_idempotent_json_route_is_400() -> None:
    response = ApiClient(language="en").post(
        "/api/v1/auth/register",
        raw=b'{"phone": "0912345678", "password": "x", "full_name": "A"}',
        content_type="multipart/form-data",
        headers={"Idempotency-Key": "k-1"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "malformed_multipart",
        "message": "The request body is not a valid multipart form.",
        "details": None,
    }


def test_multipart_without_boundary_on_the_upload_route_is_400() -> None:
    user = make_user()
    dossier = make_dossier(user)
    response = signed_in(user).post(
        f"/api/v1/dossiers/{dossier.id}/attachments", raw=b"xx", content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_multipart"
    assert dossier.attachments.count() == 0


@pytest.mark.parametrize("body", [[None, None], [], "full_name", 5, True])
def test_a_json_body_that_is_not_an_object_is_422(body: object) -> None:
    user = make_user(full_name="Lê Thị Hoa")
    response = signed_in(user).patch("/api/v1/auth/me", body)
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": "body",
            "location": "body",
            "code": "object_expected",
            "message": "Must be a JSON object.",
        }
    ]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/catalogue/procedures", "q"),
        ("/api/v1/catalogue/procedures", "field"),
        ("/api/v1/catalogue/agencies", "province_code"),
    ],
)
def test_nul_in_a_query_parameter_is_422(path: str, name: str) -> None:
    response = ApiClient(language="en").get(path, query={name: "a\x00b"})
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": name,
            "location": "query",
            "code": "nul_character",
            "message": "Must not contain the NUL character.",
        }
    ]


def test_nul_in_a_json_body_is_422_naming_the_field_and_nothing_is_written() -> None:
    user = make_user()
    response = signed_in(user).post(
        "/api/v1/organisations",
        {"name": "Công ty\x00", "tax_code": "0100109106", "address": "Hà Nội"},
    )
    assert response.status_code == 422
    assert response.json() == {
        "code": "validation_error",
        "message": "Some fields are not valid.",
        "details": [
            {
                "field": "name",
                "location": "body",
                "code": "nul_character",
                "message": "Must not contain the NUL character.",
            }
        ],
    }
    assert Organisation.objects.count() == 0


@pytest.mark.parametrize("value", ["0", "1700000000", "2025-1-5", "2025-01-05T00:00", "٢٠٢٥-٠١-٠٥"])
def test_a_date_filter_takes_only_a_calendar_date(value: str) -> None:
    user = make_user()
    make_dossier(user, status=2)
    response = signed_in(user).get("/api/v1/dossiers", query={"submitted_to": value})
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": "submitted_to",
            "location": "query",
            "code": "value_error",
            "message": "Use the format YYYY-MM-DD.",
        }
    ]


def test_a_calendar_date_filter_still_works() -> None:
    user = make_user()
    dossier = make_dossier(user, status=2)
    response = signed_in(user).get("/api/v1/dossiers", query={"submitted_from": "2020-01-01"})
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [str(dossier.id)]


def test_a_date_filter_at_the_last_calendar_day_lists_everything_before_it() -> None:
    user = make_user()
    dossier = make_dossier(user, status=2)
    response = signed_in(user).get("/api/v1/dossiers", query={"submitted_to": "9999-12-31"})
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [str(dossier.id)]


# The national payment platform's callback is public (the body's signature is checked
# after parsing): what no signer could have sent is refused in the platform's own answer
# shape, never a 500.
NATIONAL_CALLBACK = "/api/v1/payments/gateways/national/callback"


@pytest.fixture
def national_platform(settings: Any) -> None:
    settings.PAYMENT_NATIONAL_MERCHANT_ID = "TEST-DVC"
    settings.PAYMENT_NATIONAL_SECRET = "test-national-secret-0123456789"


@pytest.mark.usefixtures("national_platform")
@pytest.mark.parametrize(
    "raw",
    [
        b'{"order_id": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"a":' * 30_000 + b"1" + b"}" * 30_000,
    ],
    ids=["array", "object"],
)
def test_a_national_callback_nested_past_the_parsers_depth_is_malformed(raw: bytes) -> None:
    response = ApiClient().post(NATIONAL_CALLBACK, raw=raw)
    assert response.status_code == 200
    assert response.json() == {"code": "99", "message": "Error"}
    assert not Payment.objects.exists()
    assert not PaymentAnomaly.objects.exists()


@pytest.mark.usefixtures("national_platform")
@pytest.mark.parametrize("field", ["order_id", "signature"])
def test_a_national_callback_with_a_lone_surrogate_is_an_invalid_signature(field: str) -> None:
    body = {"merchant_id": "TEST-DVC", "order_id": "P1", "status": "SUCCESS", "signature": "ab"}
    raw = json.dumps({**body, field: "\ud800"}).encode()  # the escape "\\ud800": valid JSON
    response = ApiClient().post(NATIONAL_CALLBACK, raw=raw)
    assert response.status_code == 200
    assert response.json() == {"code": "97", "message": "Invalid signature"}
    assert not Payment.objects.exists()
    assert not PaymentAnomaly.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"full_name": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"a":' * 30_000 + b"1" + b"}" * 30_000,
        b'{"full_name": ' + b"1" * 5_000 + b"}",  # more digits than Python reads as an int
    ],
    ids=["deep-array", "deep-object", "long-number"],
)
def test_json_that_python_cannot_read_is_malformed_json_and_nothing_is_written(raw: bytes) -> None:
    user = make_user(full_name="Lê Thị Hoa")
    response = signed_in(user).patch("/api/v1/auth/me", raw=raw)
    assert response.status_code == 400
    assert response.json() == {
        "code": "malformed_json",
        "message": "The request body is not valid JSON.",
        "details": None,
    }
    user.refresh_from_db()
    assert user.full_name == "Lê Thị Hoa"


# Django reads at most DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000) fields of a query string or
# form and DATA_UPLOAD_MAX_NUMBER_FILES (100) files; past that it raises, and that was a
# 500 on any route reading them, anonymous ones included.
def _multipart(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, body in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--XyZ\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + body + b"\r\n"
    return out + b"--XyZ--\r\n"


TOO_MANY_FIELDS = {
    "code": "too_many_fields",
    "message": "The request has more fields than the server reads (at most 1000).",
    "details": None,
}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/catalogue/procedures",
        "/api/v1/payments/gateways/vnpay/callback",
        "/api/v1/payments/gateways/vnpay/return",
    ],
)
def test_a_query_string_of_more_fields_than_django_reads_is_400(path: str) -> None:
    query = "&".join(f"f{i}=1" for i in range(1_001))
    response = ApiClient(language="en").get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.json() == TOO_MANY_FIELDS
    assert not PaymentAnomaly.objects.exists()


def test_an_upload_with_more_form_fields_than_django_reads_is_400_and_nothing_is_saved() -> None:
    user = make_user()
    dossier = make_dossier(user)
    fields = [(f"f{i}", None, b"x") for i in range(1_001)]
    response = signed_in(user).post(
        f"/api/v1/dossiers/{dossier.id}/attachments",
        raw=_multipart([("document_code", None, b"doc-1"), *fields]),
        content_type="multipart/form-data; boundary=XyZ",
    )
    assert response.status_code == 400
    assert response.json() == TOO_MANY_FIELDS
    assert dossier.attachments.count() == 0


def test_an_upload_with_more_files_than_django_reads_is_400_and_nothing_is_saved() -> None:
    user = make_user()
    dossier = make_dossier(user)
    files = [(f"f{i}", "a.jpg", b"x") for i in range(101)]
    response = signed_in(user).post(
        f"/api/v1/dossiers/{dossier.id}/attachments",
        raw=_multipart([("document_code", None, b"doc-1"), *files]),
        content_type="multipart/form-data; boundary=XyZ",
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "too_many_files",
        "message": "The request has more files than the server reads (at most 100).",
        "details": None,
    }
    assert dossier.attachments.count() == 0


def test_an_idempotent_json_route_sent_a_form_of_too_many_fields_is_400_and_creates_nothing() -> (
    None
):
    user = make_user()
    fields = [(f"f{i}", None, b"x") for i in range(1_001)]
    response = signed_in(user).post(
        "/api/v1/organisations",
        raw=_multipart(fields),
        content_type="multipart/form-data; boundary=XyZ",
        headers={"Idempotency-Key": "k-1"},
    )
    assert response.status_code == 400
    assert response.json() == TOO_MANY_FIELDS
    assert Organisation.objects.count() == 0


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "values"),
    [
        # Python takes offsets up to 23:59; PostgreSQL refuses them past 15:59, and
        # these moments lie outside years 1..9999 once in UTC.
        ("/api/v1/dossiers", ["9999-12-31T23:59:59.999999-23:59", str(uuid.uuid4())]),
        ("/api/v1/dossiers", ["0001-01-01T00:00:00+23:59", str(uuid.uuid4())]),
        ("/api/v1/auth/sessions", ["0001-01-01T00:00:00+23:59", str(uuid.uuid4())]),
        ("/api/v1/catalogue/procedures", ["\u0000abc", 1]),
    ],
    ids=["after-9999", "before-1", "sessions", "nul-in-text"],
)
def test_a_tampered_cursor_the_database_cannot_read_is_invalid_cursor(
    path: str, values: list[Any]
) -> None:
    user = make_user()
    make_dossier(user, status=2)
    response = signed_in(user).get(path, query={"cursor": _cursor(values)})
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": "cursor",
            "location": "query",
            "code": "invalid_cursor",
            "message": "This cursor is not valid.",
        }
    ]


# Django files a part sent with `filename=""` as a text field: the upload answered
# "missing" for a text file, and `nul_character` for a photo (its bytes hold NUL).
@pytest.mark.parametrize("content", [b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"plain text"])
def test_an_upload_without_a_file_name_is_filename_missing_and_nothing_is_saved(
    content: bytes,
) -> None:
    user = make_user()
    dossier = make_dossier(user)
    response = signed_in(user).post(
        f"/api/v1/dossiers/{dossier.id}/attachments",
        raw=_multipart([("document_code", None, b"doc-1"), ("file", "", content)]),
        content_type="multipart/form-data; boundary=XyZ",
    )
    assert response.status_code == 422
    assert response.json() == {
        "code": "validation_error",
        "message": "Some fields are not valid.",
        "details": [
            {
                "field": "file",
                "location": "file",
                "code": "filename_missing",
                "message": "The file was sent without a file name.",
            }
        ],
    }
    assert dossier.attachments.count() == 0


def test_a_file_without_a_name_is_explained_in_vietnamese_by_default() -> None:
    response = ApiClient().post(
        "/api/v1/verify",
        raw=_multipart([("file", "", b"%PDF-1.7")]),
        content_type="multipart/form-data; boundary=XyZ",
    )
    assert response.status_code == 422
    [detail] = response.json()["details"]
    assert (detail["field"], detail["code"]) == ("file", "filename_missing")
    assert detail["message"] == "Tệp được gửi mà không có tên tệp."


def test_a_text_field_holding_nul_beside_a_file_without_a_name_gets_both_errors() -> None:
    user = make_user()
    dossier = make_dossier(user)
    response = signed_in(user).post(
        f"/api/v1/dossiers/{dossier.id}/attachments",
        raw=_multipart([("document_code", None, b"doc\x00-1"), ("file", "", b"x")]),
        content_type="multipart/form-data; boundary=XyZ",
    )
    assert response.status_code == 422
    assert [(d["field"], d["location"], d["code"]) for d in response.json()["details"]] == [
        ("file", "file", "filename_missing"),
        ("document_code", "form", "nul_character"),
    ]
    assert dossier.attachments.count() == 0


@pytest.mark.parametrize(
    ("parts", "field", "location"),
    [
        (
            [("document_code", None, b"doc-1"), ("document_code", None, b"doc-2")],
            "document_code",
            "form",
        ),
        ([("document_code", None, b"doc-1"), ("file", "b.jpg", b"y")], "file", "file"),
    ],
    ids=["field", "file"],
)
def test_an_upload_with_a_part_given_twice_is_refused_and_nothing_is_saved(
    parts: list[tuple[str, str | None, bytes]], field: str, location: str
) -> None:
    user = make_user()
    dossier = make_dossier(user)
    response = signed_in(user).post(
        f"/api/v1/dossiers/{dossier.id}/attachments",
        raw=_multipart([*parts, ("file", "a.jpg", b"x")]),
        content_type="multipart/form-data; boundary=XyZ",
    )
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": field,
            "location": location,
            "code": "repeated_field",
            "message": "Must be given only once.",
        }
    ]
    assert dossier.attachments.count() == 0


# The catalogue's cursor is (name, id): text, then an integer. `to_python` read a
# number as a name ("5") and a text or a fraction as an id ("7", 1.5 → 1).
@pytest.mark.parametrize(
    "values",
    [[5, 1], [1.5, 1], ["Thủ tục", "1"], ["Thủ tục", 1.5], ["Thủ tục", 1.0], ["Thủ tục", True]],
)
def test_a_catalogue_cursor_of_the_wrong_types_is_invalid_cursor(values: list[Any]) -> None:
    make_procedure()
    response = ApiClient(language="en").get(
        "/api/v1/catalogue/procedures", query={"cursor": _cursor(values)}
    )
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": "cursor",
            "location": "query",
            "code": "invalid_cursor",
            "message": "This cursor is not valid.",
        }
    ]


def test_a_catalogue_cursor_it_handed_out_still_pages() -> None:
    procedures = sorted((make_procedure() for _ in range(3)), key=lambda p: (p.name, p.id))
    first = ApiClient().get("/api/v1/catalogue/procedures", query={"limit": 2}).json()
    second = ApiClient().get(
        "/api/v1/catalogue/procedures", query={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert second.status_code == 200
    assert [p["id"] for p in first["items"] + second.json()["items"]] == [p.id for p in procedures]


def test_a_form_field_over_djangos_memory_limit_is_413_and_nothing_is_saved(settings: Any) -> None:
    # Behind BodyLimitMiddleware the form of an upload may hold up to its route's
    # limit; Django keeps at most DATA_UPLOAD_MAX_MEMORY_SIZE of fields (not files).
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    user = make_user()
    dossier = make_dossier(user)
    response = signed_in(user).post(
        f"/api/v1/dossiers/{dossier.id}/attachments",
        raw=_multipart([("document_code", None, b"d" * 2_000), ("file", "a.jpg", b"x")]),
        content_type="multipart/form-data; boundary=XyZ",
    )
    assert response.status_code == 413
    assert response.json() == {
        "code": "payload_too_large",
        "message": "The request is too large.",
        "details": None,
    }
    assert dossier.attachments.count() == 0
