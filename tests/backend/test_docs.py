"""The published OpenAPI document and translations never drift from the code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.management.commands.export_openapi import OPENAPI_PATH, render_openapi

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_matches_the_running_schema() -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render_openapi(), (
        "mobile_api_docs/openapi.json is stale: run `make docs` and commit it."
    )


def test_openapi_is_served(api) -> None:
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Citizen services API"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext (msgfmt) is not installed")
@pytest.mark.parametrize("language", ["vi", "en"])
def test_translation_catalogue_is_complete_and_compiled(language: str, tmp_path: Path) -> None:
    po = ROOT / "locale" / language / "LC_MESSAGES" / "django.po"
    mo = po.with_suffix(".mo")
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "out.mo"), str(po)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if language == "vi":
        assert "untranslated" not in result.stderr, result.stderr
        assert "fuzzy" not in result.stderr, result.stderr
    assert (tmp_path / "out.mo").read_bytes() == mo.read_bytes(), "run `make messages` and commit"


def _operations(document: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_operation_documents_the_conventional_errors(api) -> None:
    document = api.get("/api/v1/openapi.json").json()
    missing = []
    for method, path, operation in _operations(document):
        declared = set(operation["responses"])
        expected = {"503"}
        if operation.get("security"):
            expected.add("401")
        if operation.get("parameters") or "requestBody" in operation:
            expected.add("422")
        if "requestBody" in operation:
            expected |= {"400", "413"}
        if expected - declared:
            missing.append((method, path, sorted(expected - declared)))
    assert missing == []


def test_conventional_errors_use_the_error_shape_and_keep_route_texts(api) -> None:
    document = api.get("/api/v1/openapi.json").json()
    dossiers = document["paths"]["/api/v1/dossiers"]["get"]["responses"]
    assert dossiers["401"] == {
        "description": "Missing, invalid or expired access token.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
    # A route's own declaration wins over the shared one.
    upload = document["paths"]["/api/v1/dossiers/{dossier_id}/attachments"]["post"]["responses"]
    assert upload["413"]["description"] == "Request Entity Too Large"
    # @idempotent routes: a retry while the first request runs gets 409.
    register = document["paths"]["/api/v1/auth/register"]["post"]["responses"]
    assert register["409"]["description"] == (
        "A request with this Idempotency-Key is still being processed."
    )


def test_schema_names_are_unique_across_apps() -> None:
    """Two schemas with one name share one OpenAPI component: one silently wins."""
    from ninja import Schema

    import backend.urls  # noqa: F401 - mounts every router, importing every schema

    modules: dict[str, set[str]] = {}

    def walk(cls: type) -> None:
        for sub in cls.__subclasses__():
            if not sub.__module__.startswith(("ninja", "pydantic", "tests")):
                modules.setdefault(sub.__name__, set()).add(sub.__module__)
            walk(sub)

    walk(Schema)
    clashes = {name: sorted(mods) for name, mods in modules.items() if len(mods) > 1}
    assert clashes == {}


def _published_operations() -> list[tuple[str, str, dict]]:
    import json

    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_operation_has_a_human_summary() -> None:
    """Not django-ninja's name from the function ("Enrol Totp", "Verify Login")."""
    import re

    generated = re.compile(r"([A-Z][a-z0-9]*)( [A-Z][a-z0-9]*)*")
    for method, path, operation in _published_operations():
        summary = operation.get("summary", "")
        assert summary, f"{method} {path} has no summary"
        assert not generated.fullmatch(summary), f"{method} {path}: generated summary {summary!r}"


def test_signed_agency_operations_declare_their_headers() -> None:
    """Every signed route names X-Agency-Key; X-Event-Id only where a request has one."""
    signed = [
        op for op in _published_operations() if {"AgencySignature": []} in op[2].get("security", [])
    ]
    assert signed
    for method, path, operation in signed:
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert {"X-Agency-Key", "X-Timestamp", "X-Signature"} <= headers, (method, path)
        assert ("X-Event-Id" in headers) == (method != "get"), (method, path)


def test_binary_responses_declare_their_content_type() -> None:
    for method, path, operation in _published_operations():
        for status, response in operation["responses"].items():
            if status.startswith("2") and status != "204":
                assert response.get("content"), f"{method} {path} {status} has no content type"


def test_the_guides_the_interactive_docs_link_to_are_served(api) -> None:
    import re

    from backend.api import API_DESCRIPTION

    links = re.findall(r"\]\((/api/v1/[^)]+)\)", API_DESCRIPTION)
    assert "/api/v1/guides/README.md" in links
    for link in links:
        response = api.get(link)
        assert response.status_code == 200, link
    readme = api.get("/api/v1/guides/README.md")
    assert readme.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert readme.content.decode() == (ROOT / "mobile_api_docs" / "README.md").read_text()
    assert api.get("/api/v1/guides/settings.md").status_code == 404
    assert api.get("/api/v1/guides/..%2FREADME.md").status_code == 404


def test_every_api_path_a_guide_names_is_a_route() -> None:
    """`/api/v1/...` in the guides (placeholders `{…}`, `<…>` and a trailing `...`
    stand for any segment; a prefix of a route is fine) is an operation of the
    document or a page served beside it; the gateway's own API in payments.md is
    written `{base}/api/v1`."""
    import json
    import re

    served = ["/api/v1/docs", "/api/v1/openapi.json", "/api/v1/guides/*.md"]
    paths = [*json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))["paths"], *served]

    def segments(path: str) -> list[str]:
        path = re.sub(r"\{[^}]*\}|<[^>]*>", "*", path)
        return ["*" if part == "..." else part for part in path.strip("/").split("/")]

    def matches(named: list[str], route: list[str]) -> bool:
        open_ended = named[-1] == "*" and len(named) < len(route)
        if len(named) != len(route) and not open_ended:
            return False
        return all(a == b or "*" in (a, b) for a, b in zip(named, route, strict=False))

    routes = [segments(path) for path in paths]
    unknown = []
    for guide in sorted((ROOT / "mobile_api_docs").glob("*.md")):
        text = guide.read_text(encoding="utf-8")
        for found in re.finditer(r"(?<!\{base\})/api/v1/(?:\{[^}]*\}|[A-Za-z0-9_<>.:\-/])*", text):
            path = found.group(0).rstrip(".:").split("?")[0]
            if any(route.startswith(path) for route in paths):
                continue  # a prefix (`/api/v1/postal/`), or a path a shell variable ends
            if not any(matches(segments(path), route) for route in routes):
                unknown.append(f"{guide.name}: {found.group(0)}")
    assert unknown == [], "\n".join(unknown)


def test_the_guides_example_moments_are_written_as_the_api_writes_them() -> None:
    """Every moment in a guide's JSON example is UTC with milliseconds and `Z`
    (backend/times.py), except in what a carrier sends us, which may carry an offset."""
    import re

    moment = re.compile(r'"(\d{4}-\d{2}-\d{2}T[^"]*)"')
    written = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
    wrong = []
    for guide in sorted((ROOT / "mobile_api_docs").glob("*.md")):
        for block in re.findall(r"```json\n(.*?)```", guide.read_text(encoding="utf-8"), re.S):
            if '"waybill"' in block:
                continue  # the carrier's webhook body: an input
            wrong += [
                f"{guide.name}: {m}" for m in moment.findall(block) if not written.fullmatch(m)
            ]
    assert wrong == [], "\n".join(wrong)


def test_every_setting_read_from_the_environment_is_in_the_readme() -> None:
    """settings.py's env/envint/envbool/envlist names each appear in README.md's tables."""
    import ast

    tree = ast.parse((ROOT / "backend" / "settings.py").read_text(encoding="utf-8"))
    names = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"env", "envbool", "envint", "envlist"}
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert len(names) > 100
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sorted(name for name in names if f"`{name}`" not in readme) == []


# Where the guides' codes, fields and values come from: the apps, the fakes they
# describe, Django's password validators (settings.AUTH_PASSWORD_VALIDATORS) and
# pydantic's validation errors (`missing`, `extra_forbidden`, ...).
_CODE_SOURCES = [
    "backend",
    "auth",
    "dossiers",
    "tracking",
    "notifications",
    "postal",
    "payments",
    "documents",
    "fakes",
]
# Named by a guide to say it does not exist.
_NAMED_AS_ABSENT = {"citizen_id_taken"}


def _words_of_the_code() -> set[str]:
    """Every identifier and string of the code, and the codes it builds at run time."""
    import ast
    import typing

    import django.contrib.auth.password_validation
    from pydantic_core import core_schema

    from backend.old_address_api import _LEVEL_TEXTS

    words: set[str] = set(typing.get_args(core_schema.ErrorType))
    files = [Path(django.contrib.auth.password_validation.__file__)]
    for app in _CODE_SOURCES:
        files += [path for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts]
    for path in files:
        words |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path.read_text(encoding="utf-8")))
    # f"unknown_old_{exc.level}" of an old address's unknown unit, one per level.
    words |= {f"unknown_old_{level}" for level in _LEVEL_TEXTS}
    # f"{field}_required" of the support console's refusals, one per field it requires.
    support = ast.parse((ROOT / "auth" / "actions" / "support.py").read_text(encoding="utf-8"))
    words |= {
        f"{node.args[0].value}_required"
        for node in ast.walk(support)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_required_text"
        and isinstance(node.args[0], ast.Constant)
    }
    return words


def test_every_code_and_name_a_guide_writes_is_one_of_the_code() -> None:
    """A `snake_case` word in backticks (an error code, a field, a value) is a word of
    the code, or a code it builds: a code renamed or never written (`unknown_old_commune`
    for `unknown_old_ward`) fails here, not in an app that branches on it."""
    words = _words_of_the_code()
    unknown = []
    for guide in sorted((ROOT / "mobile_api_docs").glob("*.md")):
        for number, line in enumerate(guide.read_text(encoding="utf-8").splitlines(), 1):
            for word in re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`", line):
                if word not in words and word not in _NAMED_AS_ABSENT:
                    unknown.append(f"{guide.name}:{number}: {word}")
    assert unknown == [], "\n".join(unknown)


_ERROR_CLASSES = {
    "ApiError",
    "NotFound",
    "Conflict",
    "Unprocessable",
    "PermissionDenied",
    "NotAuthenticated",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "RateLimited",
    "error_response",
}


def _codes_of_the_code(sources: list[str] = _CODE_SOURCES) -> tuple[set[str], set[str]]:
    """(codes an error answers with, codes of field errors inside a 422's `details`)."""
    import ast

    answered: set[str] = set()
    of_fields: set[str] = set()
    for app in sources:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Dict):
                    of_fields |= {
                        value.value
                        for key, value in zip(node.keys, node.values, strict=True)
                        if isinstance(key, ast.Constant)
                        and key.value == "code"
                        and isinstance(value, ast.Constant)
                    }
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                position = {"field_error": 1, "RateLimited": 1, "error_response": 1}.get(name, 0)
                if name not in _ERROR_CLASSES and name not in {"field_error", "__init__"}:
                    continue
                args = [*node.args[position : position + 1]]
                args += [k.value for k in node.keywords if k.arg == "code"]
                found = {a.value for a in args if isinstance(a, ast.Constant)}
                (of_fields if name == "field_error" else answered).update(
                    code for code in found if isinstance(code, str)
                )
    return answered, of_fields


def test_a_field_error_code_is_never_written_as_the_code_of_a_422() -> None:
    """`invalid_phone` comes in `details` of a 422 `validation_error`: an app told
    "422 `invalid_phone`" would branch on a `code` it never gets. A guide names such a
    code after `validation_error` or with the field it is on ("422 `too_long` on `q`")."""
    answered, of_fields = _codes_of_the_code()
    only_of_fields = of_fields - answered
    assert {"invalid_phone", "invalid_tax_code", "naive_datetime"} <= only_of_fields
    wrong = []
    chain = re.compile(r"\b422 ((?:`\w+`(?: \([^)]*\))?(?:,\s*|\s+or\s+|\s+and\s+)?)+)\s*(\S*)")
    for guide in sorted((ROOT / "mobile_api_docs").glob("*.md")):
        text = guide.read_text(encoding="utf-8")
        for found in chain.finditer(text):
            listed = re.findall(r"`(\w+)`(?! \()|`(\w+)` \(", found.group(1))
            codes = [a or b for a, b in listed]
            if found.group(2) == "on" or codes[:1] == ["validation_error"]:
                continue
            line = text[: found.start()].count("\n") + 1
            wrong += [f"{guide.name}:{line}: {code}" for code in codes if code in only_of_fields]
    assert wrong == [], "\n".join(wrong)


# Codes the apps write that no app developer or agency system is ever answered with,
# each with why.
_NEVER_ANSWERED_BY_THE_API = {
    # The admin's pages (payments' anomalies), not the API.
    "anomaly_resolved": "admin",
    "resolution_required": "admin",
    # The business-registry client's reason; the API answers `business_registry_unavailable`.
    "unavailable": "internal reason",
    # The rating's own check of a comment: the API refuses U+0000 first (`nul_character`).
    "invalid_characters": "defence in depth",
}


def test_every_code_the_apps_answer_with_is_in_a_guide() -> None:
    """An error code (or a field error's code) the apps can answer with is named in a
    guide, so that an app or an agency's system can branch on it knowing it exists: a
    code added without a line in mobile_api_docs fails here."""
    answered, of_fields = _codes_of_the_code([app for app in _CODE_SOURCES if app != "fakes"])
    written: set[str] = set()
    for guide in (ROOT / "mobile_api_docs").glob("*.md"):
        written |= set(re.findall(r"[a-z][a-z0-9_]*", guide.read_text(encoding="utf-8")))
    codes = (answered | of_fields) - {""}
    assert {"too_many_fields", "no_documents", "invalid_method"} <= codes
    missing = sorted(codes - written - set(_NEVER_ANSWERED_BY_THE_API))
    assert missing == [], f"codes no guide names: {missing}"
    assert set(_NEVER_ANSWERED_BY_THE_API) <= codes, "an exception no longer in the code"
