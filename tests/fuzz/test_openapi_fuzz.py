"""Property-based fuzzing of every operation of the published OpenAPI document.

The operations come from the live API at collection time, so routes merged later
are fuzzed without touching this file. Each operation runs in-process (WSGI,
through the whole middleware stack) with a bounded, reproducible number of
examples; path, query and body fields named like a row the `world` fixture
created (dossier_id, attachment_id, ...) sometimes carry that row's real id, so
the fuzzer gets past the 404s into the handlers.

Checks: no 5xx, and every response has a documented status code, content type
and body schema.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import backend.urls  # noqa: F401  (mounts every app's router on the root API)
from backend.management.commands.export_openapi import render_openapi
from tests.fuzz.conftest import WORLD, World

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 10

schema = schemathesis.openapi.from_dict(json.loads(render_openapi()))
schema.app = get_wsgi_application()
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)

FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)


def _with_known_ids(values: Any) -> st.SearchStrategy[Any]:
    """Either the generated values, or some of them swapped for real ids of the world."""
    if not isinstance(values, dict):
        return st.just(values)
    choices = {
        name: st.sampled_from([value, *WORLD.known[name]])
        for name, value in values.items()
        if name in WORLD.known
    }
    if not choices:
        return st.just(values)
    return st.fixed_dictionaries(choices).map(lambda picked: {**values, **picked})


@schema.hook("flatmap_path_parameters")
def _path(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy[Any]:
    return _with_known_ids(path_parameters)


@schema.hook("flatmap_query")
def _query(context: Any, query: dict[str, Any]) -> st.SearchStrategy[Any]:
    return _with_known_ids(query)


@schema.hook("flatmap_body")
def _body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    return _with_known_ids(body)


@schema.parametrize()
@FUZZ_SETTINGS
def test_signed_in_citizen(case: Any, world: World) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {world.token}"}, checks=CHECKS)


@schema.include(lambda ctx: not ctx.operation.definition.raw.get("security")).parametrize()
@FUZZ_SETTINGS
def test_anonymous(case: Any, world: World) -> None:
    case.call_and_validate(checks=CHECKS)

