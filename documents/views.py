"""The public verification page a result's QR code opens."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from backend.errors import ApiError, NotFound
from backend.middleware import client_ip
from documents.verification import count_attempt, verify_code


@require_GET
def verify_page(request: HttpRequest, code: str) -> HttpResponse:
    try:
        count_attempt(client_ip(request))
    except ApiError as exc:
        return HttpResponse(str(exc.message), status=exc.status, content_type="text/plain")
    try:
        verification = verify_code(code[:40])
    except NotFound:
        context: dict[str, object] = {"found": False}
        status = 404
    else:
        context = {"found": True, "state": verification.state, "result": verification.result}
        status = 200
    response = render(request, "documents/verify.html", context, status=status)
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response
