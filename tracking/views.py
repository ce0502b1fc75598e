"""The public lookup page a receipt's QR code opens (it calls POST /api/v1/lookup)."""

from __future__ import annotations

import secrets

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def lookup_page(request: HttpRequest) -> HttpResponse:
    nonce = secrets.token_urlsafe(16)
    response = render(
        request,
        "tracking/lookup.html",
        {"code": request.GET.get("code", "")[:40], "api_url": "/api/v1/lookup", "nonce": nonce},
    )
    response["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'"
    )
    response["Referrer-Policy"] = "no-referrer"
    return response
