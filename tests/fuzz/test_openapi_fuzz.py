"""Property-based fuzzing of every operation of the published OpenAPI document.

The operations come from the live API at collection time, so routes merged later
are fuzzed without touching this file. Each operation runs in-process (WSGI,
through the whole middleware stack) with a bounded, reproducible number of
examples; path, query and body fields named like a row the `world` fixture
created (dossier_id, attachment_id, ...) sometimes carry that row's real id, so
the fuzzer gets past the 404s into the handlers.

Checks (CHECKS below): no 5xx; every response has a documented status code,
content type and body schema; input the schema forbids is refused; secured
operations refuse anonymous calls. Three passes: a signed-in citizen over every
operation, support staff (TOTP enrolled) over the /support operations, an
anonymous caller over the public ones, and the signed systems (an agency's
back-office, the postal carrier) over theirs, each request signed as sent. Reproduce a failure
with the `curl` line schemathesis prints.

The budget is small for CI (MAX_EXAMPLES per operation and pass, the same examples
every run). A deeper run by hand: FUZZ_MAX_EXAMPLES=300 for more examples, and
FUZZ_SEED=<n> for other ones (a different seed explores differently; the seed
is printed with a failure so it can be replayed).
"""

from __future__ import annotations

import io
import json
import os
import time
from typing import Any

import schemathesis
from django.core.handlers.wsgi import WSGIRequest
from django.core.wsgi import get_wsgi_application
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

import backend.urls  # noqa: F401  (mounts every app's router on the root API)
from backend.management.commands.export_openapi import render_openapi
from dossiers.agency.signing import sign as agency_sign
from postal.webhooks import sign as carrier_sign
from tests.fuzz.conftest import WORLD, World
from tests.postal.conftest import WEBHOOK_SECRET

# Headers each pass adds to every request it sends (see the tests at the end).
SUPPLIED_HEADERS = (
    "Authorization",
    "X-Agency-Key",
    "X-Timestamp",
    "X-Signature",
    "X-Carrier-Signature",
)


def negative_data_rejection_of_invalid_cases(ctx: Any, response: Any, case: Case) -> Any:
    """`negative_data_rejection`, minus schemathesis' own false alarms.

    Its coverage phase sometimes labels a case negative while the case it sends is
    the "Default positive test case" (no component was mutated: e.g. an optional
    body left out); accepting that request is correct, so it is not judged.
    """
    phase = case.meta.phase if case.meta is not None else None
    description = getattr(getattr(phase, "data", None), "description", "") or ""
    if "positive test case" in description.lower():
        return None
    # A case generated without `Authorization` (or an agency's signature headers) still
    # carries the pass's own credentials: the test adds them to every request. Judge
    # the case as sent; what then remains invalid may be only an unknown query
    # parameter (`?=0`), which the API ignores and the check does not count.
    generated = case.headers
    supplied = {
        name: value
        for name in SUPPLIED_HEADERS
        if (value := response.request.headers.get(name)) is not None
        and name not in (generated or {})
    }
    if supplied:
        case.headers = {**(generated or {}), **supplied}
    try:
        return negative_data_rejection(ctx, response, case)
    finally:
        case.headers = generated


CHECKS = [
    not_a_server_error,  # no 5xx
    status_code_conformance,  # every status is documented for the operation
    content_type_conformance,  # ... with its documented media type
    response_schema_conformance,  # ... and body schema
    negative_data_rejection_of_invalid_cases,  # input the schema forbids gets a 4xx
    ignored_auth,  # secured operations refuse a request without valid credentials
    unsupported_method,  # undeclared methods get 405
    missing_required_header,
]
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
# Unset: derandomized, so CI sees the same examples every run.
SEED = os.environ.get("FUZZ_SEED")

schema = schemathesis.openapi.from_dict(json.loads(render_openapi()))
_django_app = get_wsgi_application()


# What the signed pass puts in the signature headers; the app below replaces it with
# the signature of the request as sent (path, query and body bytes are only known
# then). Any other value, such as ignored_auth's, reaches the server as it is.
SIGN_HERE = "fuzz-sign-here"


def _sign(environ: dict[str, Any]) -> None:
    agency = environ.get("HTTP_X_SIGNATURE") == SIGN_HERE
    carrier = environ.get("HTTP_X_CARRIER_SIGNATURE") == SIGN_HERE
    if not (agency or carrier):
        return
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    if agency:
        path = WSGIRequest({**environ, "wsgi.input": io.BytesIO()}).get_full_path()
        environ["HTTP_X_SIGNATURE"] = agency_sign(
            WORLD.agency_secret,
            environ["REQUEST_METHOD"],
            path,
            environ.get("HTTP_X_TIMESTAMP", ""),
            environ.get("HTTP_X_EVENT_ID", ""),
            body,
        )
    if carrier:
        timestamp = str(int(time.time()))
        environ["HTTP_X_CARRIER_TIMESTAMP"] = timestamp
        environ["HTTP_X_CARRIER_SIGNATURE"] = carrier_sign(WEBHOOK_SECRET, timestamp, body)


def _app(environ: dict[str, Any], start_response: Any) -> Any:
    # Production runs each request in autocommit; the test runs inside one
    # transaction. A savepoint per request keeps a request the database refused
    # (DataError) from breaking every later example of the same test.
    _sign(environ)
    with transaction.atomic():
        return _django_app(environ, start_response)


schema.app = _app
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=SEED is None)
if SEED is not None:
    schema.config.seed = int(SEED)

FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=SEED is None,
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


# (case attribute, location): a location generated to be invalid is left alone,
# so that checks about invalid input still see invalid input.
_CONTAINERS = [
    ("path_parameters", ParameterLocation.PATH),
    ("query", ParameterLocation.QUERY),
    ("body", ParameterLocation.BODY),
]


@schema.hook("flatmap_case")
def _aim_at_known_rows(context: Any, case: Case) -> st.SearchStrategy[Case]:
    swaps = {
        attribute: _with_known_ids(getattr(case, attribute))
        for attribute, location in _CONTAINERS
        if not (case.meta is not None and case.meta.is_negative_at(location))
    }

    def apply(picked: dict[str, Any]) -> Case:
        for attribute, value in picked.items():
            setattr(case, attribute, value)
        return case

    return st.fixed_dictionaries(swaps).map(apply)


@schema.parametrize()
@FUZZ_SETTINGS
def test_signed_in_citizen(case: Any, world: World) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {world.token}"}, checks=CHECKS)


@schema.include(path_regex="/support/").parametrize()
@FUZZ_SETTINGS
def test_support_staff(case: Case, world: World) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {world.staff_token}"}, checks=CHECKS)


@schema.include(lambda ctx: not ctx.operation.definition.raw.get("security")).parametrize()
@FUZZ_SETTINGS
def test_anonymous(case: Any, world: World) -> None:
    case.call_and_validate(checks=CHECKS)


@schema.include(path_regex="^/api/v1/(agency/|postal/carriers/)").parametrize()
@FUZZ_SETTINGS
def test_signed_systems(case: Case, world: World) -> None:
    """The agency's back-office system and the postal carrier, each request signed
    (by `_app`, once its bytes are known) with the world's credential and secret."""
    signing = {
        "X-Agency-Key": world.agency_key,
        "X-Timestamp": str(int(time.time())),
        "X-Signature": SIGN_HERE,
        "X-Carrier-Signature": SIGN_HERE,
    }
    case.call_and_validate(headers=signing, checks=CHECKS)
