"""Pieces of OpenAPI that django-ninja cannot infer from a route's schemas.

A route that streams a file answers `response={200: None}` to ninja; the published
document must still say what the 200 carries (tests/backend/test_docs.py checks
that every 2xx answer declares a content type).
"""

from __future__ import annotations

from typing import Any


def file_download(description: str, *content_types: str) -> dict[str, Any]:
    """`openapi_extra` of a route whose 200 is a file of one of `content_types`."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "responses": {
            200: {
                "description": description,
                "content": dict.fromkeys(content_types, binary),
            }
        }
    }


def json_answer(description: str) -> dict[str, Any]:
    """`openapi_extra` of a route whose 200 is JSON in a shape set by someone else
    (a payment gateway's callback answer)."""
    return {
        "responses": {
            200: {
                "description": description,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        }
    }
