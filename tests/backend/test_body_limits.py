"""Every API route is in the body-limit class its request body belongs to."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from backend.api import api
from backend.body_limits import body_limit, result_body_limit


def _operations() -> list[tuple[str, str, set[str]]]:
    """(sample path, method, request content types) of every documented operation."""
    schema = api.get_openapi_schema()
    found = []
    for template, operations in schema["paths"].items():
        path = re.sub(r"\{[^}]+\}", "H01-260101-0001", template)
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            found.append((path, method, set(content)))
    return found


def test_routes_that_take_files_have_an_upload_limit_and_the_rest_the_json_limit() -> None:
    operations = _operations()
    multipart = {path for path, _m, types in operations if "multipart/form-data" in types}
    assert multipart == {
        "/api/v1/dossiers/H01-260101-0001/attachments",
        "/api/v1/agency/dossiers/H01-260101-0001/complete",
        "/api/v1/wallet/items",
        "/api/v1/verify",
    }
    for upload in ("/api/v1/dossiers/H01-260101-0001/attachments", "/api/v1/wallet/items"):
        assert body_limit(upload) == settings.API_MAX_UPLOAD_BODY_BYTES
    for result in ("/api/v1/agency/dossiers/H01-260101-0001/complete", "/api/v1/verify"):
        assert body_limit(result) == result_body_limit()
    assert result_body_limit() == settings.RESULT_FILE_MAX_BYTES + settings.API_MAX_JSON_BODY_BYTES
    for path, method, _types in operations:
        if path not in multipart:
            assert body_limit(path) == settings.API_MAX_JSON_BODY_BYTES, (method, path)


def test_pages_outside_the_api_take_the_largest_limit() -> None:
    assert body_limit("/admin/dossiers/dossier/1/lifecycle/complete/") == max(
        settings.API_MAX_UPLOAD_BODY_BYTES, result_body_limit()
    )


def test_the_readme_gives_every_route_that_takes_a_file_its_limit() -> None:
    """README.md's 413 row names each multipart route beside its limit (a wallet paper
    and a checked result took theirs without the row saying so)."""
    readme = (Path(settings.BASE_DIR) / "mobile_api_docs" / "README.md").read_text()
    [row] = re.findall(r"^\| 413 \| `payload_too_large` \| (.*) \|$", readme, re.M)
    upload, result = row.split("11 MB for ", 1)[1].split("the result file limit plus 256 KB", 1)
    schema = api.get_openapi_schema()
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "multipart/form-data" not in content:
                continue
            named = f"`{method.upper()} {template}`"
            if body_limit(template) == settings.API_MAX_UPLOAD_BODY_BYTES:
                assert named in upload, named
            else:
                assert body_limit(template) == result_body_limit()
                assert named in result, named
