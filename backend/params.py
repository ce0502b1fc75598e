"""Query parameters: the reading rules every list and search route shares.

Every `Query[...]` schema of the API is a `QueryParams` (tests/backend/test_params.py
walks the routes to hold it). pydantic reads the text of an integer laxly: `0.0`,
`1.0`, `+1`, ` 1` and `1_0` (ten) all pass as integers. A query string is text
the client wrote; an integer in it is written in decimal digits, nothing else, so
`?agency_id=0.0` is a 422 `int_parsing` like `?agency_id=abc`, never a silent `0`.
Likewise a boolean is `true` or `false`, as the OpenAPI document and every HTTP
client library write one: pydantic's `yes`, `on`, `t`, `1` (and `off`, `0`...) are a
422 `bool_parsing`.

A parameter given twice is refused where query strings and forms are parsed
(`backend.api.StrictJSONParser`), not here: by then only one value is left.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from ninja import Schema
from pydantic import ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

WHOLE_NUMBER = re.compile(r"-?[0-9]+", re.ASCII)
BOOLEANS = frozenset({"true", "false"})


def _is_annotation_of(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(members) == 1 and members[0] is kind
    return False


def is_integer_annotation(annotation: Any) -> bool:
    """`int`, `int | None` or `Optional[int]` (a bool is not an integer here)."""
    return _is_annotation_of(annotation, int)


def is_boolean_annotation(annotation: Any) -> bool:
    """`bool`, `bool | None` or `Optional[bool]`."""
    return _is_annotation_of(annotation, bool)


class QueryParams(Schema):
    """The base of every route's query parameters."""

    @field_validator("*", mode="before")
    @classmethod
    def _written_one_way(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or not isinstance(value, str):
            return value
        # The types pydantic gives "abc": the same code and message for both.
        if is_integer_annotation(field.annotation) and not WHOLE_NUMBER.fullmatch(value):
            raise PydanticCustomError("int_parsing", "Input should be a valid integer")
        if is_boolean_annotation(field.annotation) and value not in BOOLEANS:
            raise PydanticCustomError("bool_parsing", "Input should be a valid boolean")
        return value
