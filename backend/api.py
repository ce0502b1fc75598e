"""The root django-ninja API: every app's router is mounted here under /api/v1/."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    ObjectDoesNotExist,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, RawPostDataException
from django.http.multipartparser import MultiPartParserError
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import (
    AuthenticationError,
    AuthorizationError,
    HttpError,
    ValidationError,
    ValidationErrorContext,
)
from ninja.openapi.schema import OpenAPISchema
from ninja.parser import Parser

from backend import strict_json
from backend.errors import (
    CACHE_DOWN,
    DATABASE_DOWN,
    ApiError,
    ErrorOut,
    Unprocessable,
    api_error_response,
    error_response,
    field_detail,
    outage_response,
    unavailable_response,
)
from backend.multipart_frame import (
    BrokenFrame,
    boundary_of,
    frame_error,
    frame_of,
    malformed_multipart,
)
from backend.times import ApiJSONRenderer

logger = logging.getLogger(__name__)


class MalformedJSON(ValueError):
    def __init__(self, message: str, duplicate: str | None = None) -> None:
        super().__init__(message)
        self.duplicate = duplicate  # the key an object gave twice, if that was it


class NotAJSONObject(ValueError):
    pass


def nul_detail(field: str, location: str) -> dict[str, str]:
    return field_detail(field, "nul_character", _("Must not contain the NUL character."), location)


def nul_path(document: Any) -> str | None:
    """The dotted path of a key or text in a JSON document that holds U+0000, else
    None. Iterative: a body nested as deep as the JSON parser allows must not
    overflow the stack here."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return ".".join(path)
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                here = (*path, key.replace("\x00", ""))
                if "\x00" in key:
                    return ".".join(here)
                stack.append((here, item))
        elif isinstance(value, list):
            stack.extend(((*path, str(i)), item) for i, item in reversed(list(enumerate(value))))
    return None


class StrictJSONParser(Parser):
    """Parses JSON bodies; anything that is not a JSON document is a coded 400.

    A key given twice in one object is refused too (`backend.strict_json`): 400
    `malformed_json` whose details name the key.

    Every JSON body of this API is an object. ninja reads the fields of a body
    schema out of whatever it gets, so an array or a bare string would pass as
    `{}` (a PATCH would "succeed" doing nothing): refuse them with a 422.

    PostgreSQL cannot store or compare text holding NUL (U+0000, in JSON only as
    the escape `\\u0000`): a body holding one anywhere is refused with a 422 that
    names the field, before any schema or query sees it.
    """

    def parse_body(self, request: HttpRequest) -> Any:
        try:
            document = strict_json.loads(request.body)
        except strict_json.DuplicateKey as exc:
            raise MalformedJSON(str(exc), duplicate=exc.key) from exc
        except (ValueError, RecursionError) as exc:
            # Not JSON, nor anything Python reads: nested past the parser's depth,
            # or a number of more digits than `int` converts (sys.int_info).
            raise MalformedJSON(str(exc)) from exc
        if not isinstance(document, dict):
            raise NotAJSONObject(type(document).__name__)
        if b"\\u0000" in request.body:  # the only way JSON spells NUL
            field = nul_path(document)
            if field is not None:
                raise Unprocessable(details=[nul_detail(field or "body", "body")])
        return document

    def parse_querydict(
        self, data: MultiValueDict, list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        """A query string's or a form's values, each once.

        PostgreSQL cannot store or even compare text holding NUL: a query parameter
        holding one is refused before any filter reaches a query (JSON bodies:
        `parse_body`); a form field's is refused by validation (`RefusedValue`), so
        that only the route's own fields are judged (see `FILE_WITHOUT_NAME`).
        A parameter or field given twice, unless the route takes a list, is refused:
        Django would hand over the last one, and the client meant one of them.
        """
        if data is request.GET:
            location = "query"
        else:
            location = "file" if data is request.FILES else "form"
            check_form_body(request)
        result: dict[str, Any] = {}
        for key, values in data.lists():
            if "\x00" in key or (
                location == "query" and any(isinstance(v, str) and "\x00" in v for v in values)
            ):
                raise Unprocessable(details=[nul_detail(key.replace("\x00", ""), location)])
            if key in list_fields:
                result[key] = values
                continue
            if len(values) > 1:
                raise Unprocessable(details=[repeated_detail(key, location)])
            [value] = values
            result[key] = NUL_TEXT if isinstance(value, str) and "\x00" in value else value
        if location == "file" and request.content_type == "multipart/form-data":
            # Django reads a part whose filename is empty as a text field: a file
            # parameter of that name would find nothing (or the file's bytes as text).
            for key in request.POST:
                result.setdefault(key, FILE_WITHOUT_NAME)
        return result


class RefusedValue:
    """A form value that no parameter type accepts, standing for a known mistake:
    validation then refuses it with this code on the parameter that reads it, and a
    field no parameter reads stays ignored, as any unknown field is."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __repr__(self) -> str:
        return f"<{self.code}>"


NUL_TEXT = RefusedValue("nul_character")
# A multipart part sent with `filename=""`: Django files it as a text field.
FILE_WITHOUT_NAME = RefusedValue("filename_missing")


def check_form_body(request: HttpRequest) -> None:
    """400 `malformed_multipart` for a body a form route cannot read as a form.

    Django reads any body with another content type, and a multipart body without
    its boundary delimiters (`[]`), as an empty form: a route whose fields are all
    optional (the agency's "complete") would act on what was never sent. No body
    at all is an empty form; a multipart body must come with its Content-Length
    (Django reads a chunked one as an empty form). It must end with its closing delimiter,
    and each file part bear a name Django keeps (`backend.multipart_frame`; 422
    `filename_invalid`): judged while Django parsed it, which raised then; the verdict
    is read again here, should anything have caught that and read the empty form
    Django leaves behind.
    """
    try:
        body: bytes | None = request.body
    except RawPostDataException:
        body = None
    size = len(body) if body is not None else int(request.META.get("CONTENT_LENGTH") or 0)
    if not size or request.content_type == "application/x-www-form-urlencoded":
        return
    boundary = boundary_of(request.META.get("CONTENT_TYPE", ""))
    if boundary is None:
        raise malformed_multipart()
    if body and not request.META.get("CONTENT_LENGTH"):
        # Sent without Content-Length (chunked, under the ASGI server): Django parses
        # none of it, every field and file of it would be missing.
        raise malformed_multipart()
    if (frame := frame_of(request)) is not None and not frame.sound:
        raise frame_error(frame)


def repeated_detail(field: str, location: str) -> dict[str, str]:
    return field_detail(field, "repeated_field", _("Must be given only once."), location)


API_DESCRIPTION = """
REST API of the citizen mobile app for Vietnam's online public services.

* Errors always have the shape `{"code", "message", "details"}`; `code` is stable,
  `message` follows `Accept-Language` (`vi` by default, `en`).
* Authenticated routes take `Authorization: Bearer <access token>`.
* Lists are cursor-paginated: pass `cursor` from the previous page's `next_cursor`.
* POSTs that create something accept an `Idempotency-Key` header.

Guides for app developers, served here: [start here](/api/v1/guides/README.md),
[your first journey with curl](/api/v1/guides/first-journey.md),
[live updates](/api/v1/guides/realtime.md); the document itself is
[/api/v1/openapi.json](/api/v1/openapi.json).
"""


# Pydantic error types translated for citizens; any other type gets a generic
# translated text (pydantic's own is English whatever the request's language).
def _validation_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "value_error":  # the project's validators raise translated texts
        return str(ctx.get("error", error.get("msg", "")))
    messages = {
        "missing": lambda: _("This field is required."),
        "string_too_short": lambda: (
            _("Must be at least %(min)s characters.") % {"min": ctx.get("min_length")}
        ),
        "string_too_long": lambda: (
            _("Must be at most %(max)s characters.") % {"max": ctx.get("max_length")}
        ),
        "too_short": lambda: (
            _("Must have at least %(min)s items.") % {"min": ctx.get("min_length")}
        ),
        "too_long": lambda: _("Must have at most %(max)s items.") % {"max": ctx.get("max_length")},
        "string_pattern_mismatch": lambda: _("Not in the expected format."),
        "int_parsing": lambda: _("Must be a whole number."),
        "int_type": lambda: _("Must be a whole number."),
        "int_from_float": lambda: _("Must be a whole number."),
        "float_parsing": lambda: _("Must be a number."),
        "float_type": lambda: _("Must be a number."),
        "decimal_parsing": lambda: _("Must be a number."),
        "decimal_type": lambda: _("Must be a number."),
        "string_type": lambda: _("Must be text."),
        "bool_parsing": lambda: _("Must be true or false."),
        "bool_type": lambda: _("Must be true or false."),
        "dict_type": lambda: _("Must be a JSON object."),
        "model_type": lambda: _("Must be a JSON object."),
        "model_attributes_type": lambda: _("Must be a JSON object."),
        "list_type": lambda: _("Must be a list."),
        "literal_error": lambda: _("Not one of the allowed values."),
        "extra_forbidden": lambda: _("This field is not allowed."),
        "enum": lambda: _("Not one of the allowed values."),
        "uuid_parsing": lambda: _("Not a valid identifier."),
        "uuid_type": lambda: _("Not a valid identifier."),
        "date_type": lambda: _("Not a valid date."),
        "date_from_datetime_parsing": lambda: _("Not a valid date."),
        "date_from_datetime_inexact": lambda: _("Not a valid date."),
        "date_parsing": lambda: _("Not a valid date."),
        "datetime_type": lambda: _("Not a valid date and time."),
        "datetime_parsing": lambda: _("Not a valid date and time."),
        "datetime_from_date_parsing": lambda: _("Not a valid date and time."),
        "timezone_aware": lambda: _("Must include a time zone."),
        "greater_than": lambda: _("Must be more than %(gt)s.") % {"gt": ctx.get("gt")},
        "greater_than_equal": lambda: _("Must be at least %(ge)s.") % {"ge": ctx.get("ge")},
        "less_than": lambda: _("Must be less than %(lt)s.") % {"lt": ctx.get("lt")},
        "less_than_equal": lambda: _("Must be at most %(le)s.") % {"le": ctx.get("le")},
        # Codes of the project's own (backend.api.RefusedValue).
        "nul_character": lambda: _("Must not contain the NUL character."),
        "filename_missing": lambda: _("The file was sent without a file name."),
    }
    message = messages.get(kind)
    return str(message() if message is not None else _("This value is not valid."))


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    details = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        location = loc[0] if loc else "body"
        # ninja prefixes the parameter name (e.g. "payload") after the location.
        path = loc[2:] if location == "body" and len(loc) > 2 else loc[1:]
        details.append(
            {
                "field": ".".join(path) or location,
                "location": location,
                "code": error.get("type", "invalid"),
                "message": _validation_message(error),
            }
        )
    return details


def handle_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return api_error_response(request, exc)


def handle_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return error_response(422, details=validation_details(list(exc.errors)))


def handle_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(401, headers={"WWW-Authenticate": 'Bearer realm="api"'})


def handle_authorization_error(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
    return error_response(403)


def handle_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja turns whatever the parser raises into a 400 "Cannot parse request body".
    if isinstance(exc.__cause__, ApiError):
        return api_error_response(request, exc.__cause__)
    if isinstance(exc.__cause__, MalformedJSON):
        details = None
        if exc.__cause__.duplicate is not None:
            key = exc.__cause__.duplicate.replace("\x00", "")
            message = _("This key is given twice in one object.")
            details = [field_detail(key, "duplicate_key", message)]
        return error_response(
            400, "malformed_json", _("The request body is not valid JSON."), details
        )
    if isinstance(exc.__cause__, NotAJSONObject):
        detail = field_detail("body", "object_expected", _("Must be a JSON object."))
        return error_response(422, details=[detail])
    return error_response(exc.status_code)


def handle_malformed_multipart(request: HttpRequest, exc: Exception) -> HttpResponse:
    if isinstance(exc, BrokenFrame):
        return api_error_response(request, frame_error(exc.frame))
    return api_error_response(request, malformed_multipart())


def handle_too_many_fields(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Django stops reading a query string or form past DATA_UPLOAD_MAX_NUMBER_FIELDS.
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    return error_response(
        400,
        "too_many_fields",
        _("The request has more fields than the server reads (at most %(limit)s).")
        % {"limit": limit},
    )


def handle_too_many_files(request: HttpRequest, exc: Exception) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
    return error_response(
        400,
        "too_many_files",
        _("The request has more files than the server reads (at most %(limit)s).")
        % {"limit": limit},
    )


def handle_data_too_big(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Behind BodyLimitMiddleware only a form's fields can get here (not its files).
    return error_response(413)


def handle_invalid_data(request: HttpRequest, exc: Exception) -> HttpResponse:
    # PostgreSQL refused a value the validation let through (a NUL character, a
    # number out of range): the client's input, not our failure, but log it so
    # the missing validation gets added.
    logger.warning("database refused a value: %s", type(exc).__name__)
    return error_response(422, "invalid_value", _("A value is not valid."))


def handle_not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(404)


def handle_object_not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(404)


def handle_database_down(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.error("database unavailable: %s", type(exc).__name__)
    return unavailable_response("database_unavailable")


def handle_redis_down(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.error("redis unavailable: %s", type(exc).__name__)
    return unavailable_response("cache_unavailable")


def handle_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # A backing service away, under whatever wrapper: 503 with its code, not 500.
    outage = outage_response(exc)
    if outage is not None:
        logger.error(
            "service unavailable in %s %s: %s", request.method, request.path, type(exc).__name__
        )
        return outage
    # Never a stack trace in the response, in DEBUG or not; the log has it.
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(500)


def install_conventions(target: NinjaAPI) -> NinjaAPI:
    """Give `target` the project's error shape for every failure kind."""
    handlers: list[tuple[type[Exception], Any]] = [
        (Exception, handle_unexpected),
        *((exc_class, handle_database_down) for exc_class in DATABASE_DOWN),
        *((exc_class, handle_redis_down) for exc_class in CACHE_DOWN),
        (DataError, handle_invalid_data),
        (MultiPartParserError, handle_malformed_multipart),
        (TooManyFieldsSent, handle_too_many_fields),
        (TooManyFilesSent, handle_too_many_files),
        (RequestDataTooBig, handle_data_too_big),
        (ObjectDoesNotExist, handle_object_not_found),
        (Http404, handle_not_found),
        (HttpError, handle_http_error),
        (AuthorizationError, handle_authorization_error),
        (AuthenticationError, handle_authentication_error),
        (ValidationError, handle_validation_error),
        (ApiError, handle_api_error),
    ]
    for exc_class, handler in handlers:
        target.add_exception_handler(exc_class, handler)
    return target


# What the conventions above (and the middleware, and @idempotent) can answer on
# any operation, whatever its handler declares: documented once, here.
CONVENTIONAL_ERRORS: dict[int, str] = {
    400: (
        "Malformed JSON or multipart body (a route taking a form also refuses any other "
        "body), an invalid Idempotency-Key, or more query or form fields (1,000) or files "
        "(100) than the server reads."
    ),
    401: "Missing, invalid or expired access token.",
    409: "A request with this Idempotency-Key is still being processed.",
    413: "The request body is larger than the configured limit.",
    422: "A parameter or field is not valid (`details` lists them).",
    503: "A backing service (database, cache) is temporarily unavailable; retry later.",
}


def conventional_error_statuses(operation: dict[str, Any]) -> set[int]:
    """The error statuses an OpenAPI operation can get from the shared conventions."""
    statuses = {503}
    parameters = operation.get("parameters") or []
    has_body = "requestBody" in operation
    if operation.get("security"):
        statuses.add(401)
    if parameters or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {400, 413}
    if any(p.get("in") == "query" for p in parameters):
        statuses.add(400)  # too many query fields
    if any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in parameters):
        statuses |= {400, 409, 422}
    return statuses


def add_conventional_errors(schema: OpenAPISchema) -> OpenAPISchema:
    """Declare the shared error responses on every operation that lacks them."""
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorOut", ErrorOut.model_json_schema())
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            declared = {int(code) for code in responses if str(code).isdigit()}
            for status in sorted(conventional_error_statuses(operation) - declared):
                responses[status] = {
                    "description": CONVENTIONAL_ERRORS[status],
                    "content": {"application/json": {"schema": error_ref}},
                }
    return schema


class ConventionalNinjaAPI(NinjaAPI):
    def validation_error_from_error_contexts(
        self, error_contexts: list[ValidationErrorContext]
    ) -> ValidationError:
        """ninja's errors, except where a `RefusedValue` (a form value holding NUL, a
        file sent without a name) failed its parameter's type: one error of its own
        code on that parameter instead of the type's (or a union's several)."""
        errors: list[dict[str, Any]] = []
        refused: set[tuple[str, ...]] = set()
        for context in error_contexts:
            model = context.model
            reverse = model.__ninja_flatten_map_reverse__
            for details in context.pydantic_validation_error.errors(include_url=False):
                error: dict[str, Any] = dict(details)
                loc = (model.__ninja_param_source__, *reverse.get(error["loc"], error["loc"]))
                value = error.pop("input", None)
                if isinstance(value, RefusedValue):
                    loc = loc[:2]
                    if loc in refused:
                        continue
                    refused.add(loc)
                    errors.append({"type": value.code, "loc": loc, "msg": value.code})
                    continue
                ctx = error.get("ctx")
                if ctx and isinstance(ctx.get("error"), Exception):
                    ctx["error"] = str(ctx["error"])
                errors.append({**error, "loc": loc})
        return ValidationError(errors)

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        return add_conventional_errors(schema)


def build_api(**kwargs: Any) -> NinjaAPI:
    options: dict[str, Any] = {
        "parser": StrictJSONParser(),
        # One time rule for every body: UTC, RFC 3339, milliseconds, `Z` (backend/times.py).
        "renderer": ApiJSONRenderer(),
        "docs_url": "/docs",
        "openapi_url": "/openapi.json",
        **kwargs,
    }
    return install_conventions(ConventionalNinjaAPI(**options))


api = build_api(
    title="Citizen services API",
    version="1.0.0",
    description=API_DESCRIPTION,
    urls_namespace="api-v1",
)
