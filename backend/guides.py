"""The guides for app developers (`mobile_api_docs/*.md`), served read-only.

The interactive docs link here, so a developer reading them on a running server
finds the guides on the same server, at `/api/v1/guides/<name>.md`.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

GUIDES_DIR = Path(settings.BASE_DIR) / "mobile_api_docs"


def guide_names() -> list[str]:
    return sorted(path.stem for path in GUIDES_DIR.glob("*.md"))


@require_GET
def guide(request: HttpRequest, name: str) -> HttpResponse:
    # Only the files that are there, by their bare names: no path ever reaches open().
    if name not in guide_names():
        raise Http404("no such guide")
    text = (GUIDES_DIR / f"{name}.md").read_text(encoding="utf-8")
    return HttpResponse(text, content_type="text/markdown; charset=utf-8")
