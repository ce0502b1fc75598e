"""Query parameters read one way on every route: integers in digits, booleans `true` or
`false`, each given once."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import backend.urls  # noqa: F401  (mounts every app's router on the root API)
from backend.api import api
from backend.params import QueryParams, is_boolean_annotation, is_integer_annotation
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_dossier, make_procedure
from tests.notifications.conftest import notify

pytestmark = pytest.mark.django_db

PROCEDURES = "/api/v1/catalogue/procedures"


def detail(field: str, code: str, message: str, location: str = "query") -> dict[str, str]:
    return {"field": field, "location": location, "code": code, "message": message}


WHOLE_NUMBER = detail("agency_id", "int_parsing", "Must be a whole number.")


@pytest.mark.parametrize("text", ["0.0", "1.0", "1e0", "+1", " 1", "1 ", "1_0", "0x1", "١"])
def test_an_integer_parameter_takes_decimal_digits_only(text: str) -> None:
    procedure = make_procedure()
    response = ApiClient(language="en").get(PROCEDURES, query={"agency_id": text})
    assert response.status_code == 422
    assert response.json()["details"] == [WHOLE_NUMBER]
    # The same id in digits finds it: the refusal is about the writing only.
    if text in ("1.0", "+1"):
        found = ApiClient().get(PROCEDURES, query={"agency_id": str(procedure.agency_id)})
        assert [item["id"] for item in found.json()["items"]] == [procedure.id]


@pytest.mark.parametrize(("text", "status"), [("7", 200), ("-1", 200), ("0", 200), ("7.0", 422)])
def test_integer_text_at_the_boundary(text: str, status: int) -> None:
    response = ApiClient(language="en").get(PROCEDURES, query={"agency_id": text})
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("path", "name", "text"),
    [
        ("/api/v1/dossiers", "status", "2.0"),
        ("/api/v1/dossiers", "procedure_id", "1.0"),
        ("/api/v1/dossiers", "limit", "20.0"),
        ("/api/v1/catalogue/agencies", "limit", "1_0"),
    ],
)
def test_every_list_reads_its_integers_the_same_way(path: str, name: str, text: str) -> None:
    user = make_user()
    make_dossier(user, status=2)
    api_client = ApiClient(token=sign_in(user)[1].access_token, language="en")
    response = api_client.get(path, query={name: text})
    assert response.status_code == 422
    assert response.json()["details"] == [detail(name, "int_parsing", "Must be a whole number.")]


INBOX = "/api/v1/notifications"


def _inbox_of_one_read_one_unread() -> tuple[ApiClient, list[int]]:
    """A signed-in client and its inbox's ids, the unread entry first."""
    user = make_user()
    dossier = make_dossier(user, status=2)
    read, unread = (notify(user, "dossier.accepted", dossier=dossier) for _ in range(2))
    api_client = ApiClient(token=sign_in(user)[1].access_token, language="en")
    assert api_client.post(f"{INBOX}/{read.pk}/read").status_code == 200
    return api_client, [unread.pk, read.pk]


@pytest.mark.parametrize(
    "text", ["yes", "no", "on", "off", "t", "f", "y", "1", "0", "True", "FALSE", " true", ""]
)
def test_a_boolean_parameter_takes_true_or_false_only(text: str) -> None:
    api_client, _ids = _inbox_of_one_read_one_unread()
    response = api_client.get(INBOX, query={"unread": text})
    assert response.status_code == 422
    assert response.json()["details"] == [
        detail("unread", "bool_parsing", "Must be true or false.")
    ]


@pytest.mark.parametrize(("text", "listed"), [("true", [0]), ("false", [1])])
def test_true_and_false_filter_as_written(text: str, listed: list[int]) -> None:
    api_client, ids = _inbox_of_one_read_one_unread()
    response = api_client.get(INBOX, query={"unread": text})
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [ids[i] for i in listed]


@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        (PROCEDURES, "agency_id=1&agency_id=2", "agency_id"),
        (PROCEDURES, "q=a&q=b", "q"),
        (PROCEDURES, "limit=1&limit=1", "limit"),  # even the same value twice
        ("/api/v1/catalogue/agencies", "level=commune&level=province", "level"),
        ("/api/v1/dossiers", "status=2&status=4", "status"),
        ("/api/v1/dossiers", "unknown=1&unknown=2", "unknown"),
    ],
)
def test_a_parameter_given_twice_is_refused_not_the_last_one_taken(
    path: str, query: str, name: str
) -> None:
    user = make_user()
    make_dossier(user, status=2)
    make_procedure()
    api_client = ApiClient(token=sign_in(user)[1].access_token, language="en")
    response = api_client.get(f"{path}?{query}")
    assert response.status_code == 422
    assert response.json() == {
        "code": "validation_error",
        "message": "Some fields are not valid.",
        "details": [detail(name, "repeated_field", "Must be given only once.")],
    }


def test_the_refusal_of_a_repeated_parameter_is_in_vietnamese_by_default() -> None:
    response = ApiClient().get(f"{PROCEDURES}?agency_id=1&agency_id=2")
    assert response.status_code == 422
    assert response.json()["details"][0]["message"] == "Chỉ được gửi một lần."


def _param_models() -> list[tuple[str, str, Any]]:
    found = []
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                for model in operation.models:
                    source = model.__ninja_param_source__
                    if source in ("query", "form", "file"):
                        found += [
                            (f"{prefix}{path} {name}", source, field.annotation)
                            for name, field in model.model_fields.items()
                        ]
    return found


def test_every_query_schema_is_a_query_params_and_no_integer_bypasses_it() -> None:
    """A new list's filters get the rules above only through `QueryParams`: a
    `Query[...]` schema that is not one, or an integer or boolean given as a bare query
    or form parameter, would read `1.0` as 1 or `yes` as true again."""
    models = _param_models()
    assert len(models) > 30
    wrong = [
        where
        for where, source, annotation in models
        if is_integer_annotation(annotation)
        or is_boolean_annotation(annotation)
        or (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and not (source == "query" and issubclass(annotation, QueryParams))
        )
    ]
    assert wrong == []


def test_the_api_reports_validation_errors_as_ninja_does_where_no_value_was_refused() -> None:
    """`ConventionalNinjaAPI.validation_error_from_error_contexts` is an adapted copy of
    ninja's method (it differs only for a `RefusedValue`). Every operation's parameter
    models are made to fail with missing and wrongly typed values: both methods must
    give the same errors, so a ninja upgrade that changes its own method fails here
    (re-adapt the copy) rather than changing nothing in ours unseen."""
    import pydantic
    from ninja import NinjaAPI
    from ninja.errors import ValidationErrorContext

    contexts = []
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                for model in operation.models:
                    wrong = {name: [{"x": None}] for name in model.model_fields}
                    for data in ({}, wrong):
                        try:
                            model.model_validate(data)
                        except pydantic.ValidationError as error:
                            contexts.append(
                                ValidationErrorContext(pydantic_validation_error=error, model=model)
                            )
    assert len(contexts) > 100
    ours = api.validation_error_from_error_contexts(contexts).errors
    ninjas = NinjaAPI.validation_error_from_error_contexts(api, contexts).errors
    assert len(ours) > len(contexts)
    assert ours == ninjas
