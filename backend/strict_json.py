"""JSON as the API reads it from outside: a key given twice in one object is refused.

RFC 8259 leaves a repeated name's meaning to each parser: Python keeps the last
value, others the first or both. A body whose meaning depends on who reads it (a
proxy, a WAF, the signer of a callback, this server) is refused instead of read one
way here (OWASP ASVS 5: parsers agree, input is rejected rather than guessed at).

The values are read as JSON typed them too: pydantic's lax mode takes `1.0`, `"1"` and
`true` for the integer 1 and `"yes"`, `"on"`, `1` for `true`. A body schema's integers
and booleans are pydantic's `StrictInt` and `StrictBool` (or `Field(strict=True)`), and
a type that cannot be strict (`Literal[1, 2]`) takes `JSON_INTEGER`;
tests/backend/test_body_types.py walks every body of the API to hold it. Dates,
moments, UUIDs and decimals keep their documented string forms.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError


class DuplicateKey(ValueError):
    """A JSON object gives `key` twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} is given twice in one object")
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):  # the rare case: find which key, for the answer
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return document


def loads(text: str | bytes) -> Any:
    """`json.loads`, refusing a repeated key anywhere (`DuplicateKey`, a ValueError
    like every other way a text is not the JSON it should be)."""
    return json.loads(text, object_pairs_hook=_object)


def _json_integer(value: Any) -> Any:
    if type(value) is not int:  # a bool is an int to Python, never to JSON
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# `Annotated[Literal[1, 2], JSON_INTEGER]`: pydantic cannot make a Literal strict, and
# its lax mode reads 1.0 and true as 1.
JSON_INTEGER = BeforeValidator(_json_integer)
