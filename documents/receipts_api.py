"""The applicant's submission receipt (PDF)."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Router

from auth.bearer import bearer, current_user
from backend.errors import ErrorOut, NotFound
from backend.openapi_extra import file_download
from documents.receipts import build_receipt
from dossiers.access import access_dossier
from dossiers.lookup_secrets import reveal_lookup_secret

router = Router(tags=["dossiers"])


@router.get(
    "/{dossier_id}/receipt",
    auth=bearer,
    response={200: None, 401: ErrorOut, 404: ErrorOut},
    summary="The submission receipt (PDF) with the lookup secret and its QR code",
    openapi_extra=file_download("The receipt (giấy tiếp nhận), a PDF.", "application/pdf"),
)
def download_receipt(request: HttpRequest, dossier_id: uuid.UUID) -> HttpResponse:
    """Giấy tiếp nhận và hẹn trả kết quả: code, procedure, documents received,
    appointment date, the lookup secret and a QR code that opens the lookup.
    For the applicant only (it prints the secret): anyone else gets 404."""
    user = current_user(request)
    dossier = access_dossier(user, dossier_id)
    secret = reveal_lookup_secret(dossier) if dossier.applicant_id == user.pk else None
    if secret is None or not dossier.code:
        raise NotFound("no_receipt", _("This dossier has no receipt."))
    response = HttpResponse(build_receipt(dossier, secret), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{dossier.code}.pdf"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
