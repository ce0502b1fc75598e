"""A JSON body's integers and booleans are JSON integers and booleans, nothing else.

pydantic's lax mode reads `1.0`, `"1"` and `true` as the integer 1, and `"yes"`,
`"on"`, `"t"`, `1` as `true`. A JSON body is typed by its writer: a field the OpenAPI
document declares `integer` takes a JSON integer, a `boolean` one a JSON boolean
(pydantic's `StrictInt`, `StrictBool`, `Field(strict=True)`, or
`backend.strict_json.JSON_INTEGER` where a type cannot be strict, as a `Literal`).
Dates, moments, UUIDs and decimals keep their documented string forms.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

import backend.urls  # noqa: F401  (mounts every app's router on the root API)
from backend.api import api
from dossiers.models import Dossier
from notifications.models import Preference
from tests.conftest import ApiClient, api_as, make_user
from tests.factories import make_procedure

INTEGER_NOT = [1.0, "1", True]
BOOLEAN_NOT = ["true", 1, "yes", "on", "t", 0.0]

Path = tuple[str | int, ...]


def _body_models() -> Iterator[tuple[str, Any]]:
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                for model in operation.models:
                    if model.__ninja_param_source__ == "body":
                        yield f"{'/'.join(operation.methods)} {prefix}{path}", model


def _leaves(schema: dict[str, Any], defs: dict[str, Any], path: Path) -> Iterator[tuple[Path, str]]:
    """(path, JSON type) of every integer and boolean a body may hold."""
    if "$ref" in schema:
        yield from _leaves(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, path)
        return
    if schema.get("type") in ("integer", "boolean"):
        yield path, schema["type"]
    for member in schema.get("anyOf", []) + schema.get("allOf", []) + schema.get("oneOf", []):
        yield from _leaves(member, defs, path)
    for name, item in schema.get("properties", {}).items():
        yield from _leaves(item, defs, (*path, name))
    if isinstance(schema.get("items"), dict):
        yield from _leaves(schema["items"], defs, (*path, 0))
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _leaves(schema["additionalProperties"], defs, (*path, "key"))


def _document(path: Path, value: Any) -> Any:
    for part in reversed(path):
        value = [value] if isinstance(part, int) else {part: value}
    return value


def _typed_leaves() -> list[tuple[str, Any, Path, str]]:
    found = []
    for where, model in _body_models():
        schema = model.model_json_schema()
        found += [
            (where, model, path, kind)
            for path, kind in _leaves(schema, schema.get("$defs", {}), ())
        ]
    return found


def test_every_integer_and_boolean_of_a_json_body_takes_its_json_type_only() -> None:
    """Walks every operation's body (a new field is walked without touching this test):
    each integer refuses 1.0, "1" and true, each boolean "true", 1 and "yes", with
    pydantic's `int_type` or `bool_type` on that field."""
    leaves = _typed_leaves()
    assert len(leaves) >= 12  # amounts, procedure, rating, level, preferences, watching...
    lax = []
    for where, model, path, kind in leaves:
        expected = "int_type" if kind == "integer" else "bool_type"
        for value in INTEGER_NOT if kind == "integer" else BOOLEAN_NOT:
            try:
                model.model_validate(_document(path, value))
                errors = []
            except ValidationError as exc:
                errors = [e["type"] for e in exc.errors() if tuple(e["loc"]) == path]
            if errors != [expected]:
                lax.append((where, ".".join(map(str, path)), value, errors))
    assert lax == []


# Through the API, as an app would send them: refused with the field named, nothing written.


def _field(name: str, code: str, message: str) -> dict[str, str]:
    return {"field": name, "location": "body", "code": code, "message": message}


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["yes", "on", "t", "1", "false", 0, 1])
def test_a_preference_that_is_no_json_boolean_is_refused_and_nothing_changes(value: Any) -> None:
    user = make_user()
    response = api_as(user, language="en").patch(
        "/api/v1/notifications/preferences",
        {"quiet_hours_enabled": value, "delivery_updates": False},
    )
    assert response.status_code == 422
    assert response.json()["details"] == [
        _field("quiet_hours_enabled", "bool_type", "Must be true or false.")
    ]
    assert not Preference.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_a_preference_given_as_a_json_boolean_is_taken() -> None:
    user = make_user()
    response = api_as(user).patch(
        "/api/v1/notifications/preferences", {"quiet_hours_enabled": False}
    )
    assert response.status_code == 200
    assert response.json()["quiet_hours_enabled"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("written", ['"{id}"', "{id}.0", "{id}e0", "true"])
def test_a_procedure_id_that_is_no_json_integer_is_refused_and_no_draft_made(written: str) -> None:
    procedure = make_procedure()
    user = make_user()
    raw = '{"procedure_id": ' + written.format(id=procedure.id) + "}"
    response = api_as(user, language="en").post("/api/v1/dossiers", raw=raw.encode())
    assert response.status_code == 422
    assert response.json()["details"] == [
        _field("procedure_id", "int_type", "Must be a whole number.")
    ]
    assert not Dossier.objects.exists()
    # Written as a JSON integer, the same procedure makes the draft.
    made = api_as(user).post("/api/v1/dossiers", {"procedure_id": procedure.id})
    assert made.status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("value", [1, 2])
def test_national_sign_in_takes_its_level_as_a_json_integer_only(value: int) -> None:
    response = ApiClient(language="en").post(
        "/api/v1/auth/national/start", {"device_id": "d-1", "min_level": float(value)}
    )
    assert response.status_code == 422
    assert response.json()["details"] == [
        _field("min_level", "int_type", "Must be a whole number.")
    ]
