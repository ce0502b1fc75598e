"""Write the published OpenAPI document (mobile_api_docs/openapi.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from ninja.responses import NinjaJSONEncoder

from backend.api import api

OPENAPI_PATH = Path(settings.BASE_DIR) / "mobile_api_docs" / "openapi.json"


def render_openapi() -> str:
    """The document as committed: stable key order, UTF-8, trailing newline."""
    schema = api.get_openapi_schema()
    return (
        json.dumps(schema, cls=NinjaJSONEncoder, indent=2, sort_keys=True, ensure_ascii=False)
        + "\n"
    )


class Command(BaseCommand):
    help = "Regenerate mobile_api_docs/openapi.json from the running API."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--check", action="store_true", help="Fail if the file is stale.")

    def handle(self, *args: Any, **options: Any) -> None:
        rendered = render_openapi()
        if options["check"]:
            current = OPENAPI_PATH.read_text(encoding="utf-8") if OPENAPI_PATH.exists() else ""
            if current != rendered:
                raise SystemExit("mobile_api_docs/openapi.json is stale: run `make docs`.")
            self.stdout.write("openapi.json is up to date.")
            return
        OPENAPI_PATH.write_text(rendered, encoding="utf-8")
        self.stdout.write(f"Wrote {OPENAPI_PATH.relative_to(settings.BASE_DIR)}")
