"""Public verification API (third parties, no sign-in) and the holder's view of a result."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import File, Router, Schema
from ninja.files import UploadedFile

from auth.bearer import bearer, current_user
from backend.errors import ErrorOut, PayloadTooLarge
from backend.middleware import client_ip
from documents.verification import Verification, count_attempt, verify_code, verify_file
from dossiers.access import access_dossier
from dossiers.models import ResultDocument
from dossiers.result_signatures import verify_url

router = Router(tags=["verification"])
holder_router = Router(tags=["dossiers"])

State = Literal["valid", "revoked", "expired", "invalid", "unknown"]


class IssuerOut(Schema):
    code: str
    name: str
    name_en: str


class ProcedureRefOut(Schema):
    code: str
    name: str
    name_en: str


class VerificationOut(Schema):
    genuine: bool
    state: State
    problem: str | None
    verification_code: str | None
    verify_url: str | None
    agency: IssuerOut | None
    procedure: ProcedureRefOut | None
    issued_at: dt.datetime | None
    signer_name: str | None
    signer_organisation: str | None
    certificate_serial: str | None
    sha256: str | None
    valid_until: dt.date | None
    revoked_at: dt.datetime | None


def verification_out(verification: Verification) -> dict[str, Any]:
    result = verification.result
    if result is None:
        empty = dict.fromkeys(VerificationOut.model_fields)
        return {
            **empty,
            "genuine": False,
            "state": verification.state,
            "problem": verification.problem,
        }
    agency, procedure = result.dossier.agency, result.dossier.procedure
    return {
        "genuine": verification.genuine,
        "state": verification.state,
        "problem": verification.problem,
        "verification_code": result.verification_code,
        "verify_url": verify_url(result.verification_code),
        "agency": {"code": agency.code, "name": agency.name, "name_en": agency.name_en},
        "procedure": {"code": procedure.code, "name": procedure.name, "name_en": procedure.name_en},
        "issued_at": result.signing_time,
        "signer_name": result.signer_name,
        "signer_organisation": result.signer_organisation,
        "certificate_serial": result.certificate_serial,
        "sha256": result.sha256,
        "valid_until": result.valid_until,
        "revoked_at": result.revoked_at,
    }


PUBLIC = {200: VerificationOut, 404: ErrorOut, 413: ErrorOut, 422: ErrorOut, 429: ErrorOut}


@router.get(
    "/{code}",
    auth=None,
    response={200: VerificationOut, 404: ErrorOut, 429: ErrorOut},
    summary="Verify a result by the code printed on it (no sign-in)",
)
def verify_by_code(request: HttpRequest, code: str) -> Any:
    """Which agency issued the result, for which procedure, when, and whether it was
    revoked or has expired. Unknown codes get 404 `verification_not_found`."""
    count_attempt(client_ip(request))
    return verification_out(verify_code(code[:40]))


@router.post(
    "",
    auth=None,
    response=PUBLIC,
    summary="Verify a result file (PDF): is it genuine and unaltered? (no sign-in)",
)
def verify_by_file(request: HttpRequest, file: File[UploadedFile]) -> Any:
    """`genuine` is true only when the file's signature is valid today under the
    configured trust roots **and** these exact bytes were issued by an agency here.
    Otherwise `state` is `invalid` (with `problem`: `signature_invalid`,
    `result_not_signed`, `certificate_revoked`, ...) or `unknown`
    (`not_issued_here`)."""
    count_attempt(client_ip(request))
    if (file.size or 0) > settings.RESULT_FILE_MAX_BYTES:
        raise PayloadTooLarge(
            "file_too_large",
            _("The file is larger than %(limit)s bytes.")
            % {"limit": settings.RESULT_FILE_MAX_BYTES},
        )
    return verification_out(verify_file(file.read()))


class HolderResultOut(Schema):
    verification_code: str
    verify_url: str
    state: State
    issued_at: dt.datetime
    signer_name: str
    valid_until: dt.date | None
    revoked_at: dt.datetime | None
    revocation_reason: str


@holder_router.get(
    "/{dossier_id}/results",
    auth=bearer,
    response={200: list[HolderResultOut], 401: ErrorOut, 404: ErrorOut},
    summary="The dossier's signed results with their verification codes",
)
def dossier_results(request: HttpRequest, dossier_id: uuid.UUID) -> Any:
    """Show the code and a QR code of `verify_url` next to the result in the app."""
    dossier = access_dossier(current_user(request), dossier_id)
    results = ResultDocument.objects.filter(dossier=dossier).select_related(
        "dossier__agency", "dossier__procedure"
    )
    out = []
    for result in results:
        verification = verify_code(result.verification_code)
        out.append(
            {
                "verification_code": result.verification_code,
                "verify_url": verify_url(result.verification_code),
                "state": verification.state,
                "issued_at": result.signing_time,
                "signer_name": result.signer_name,
                "valid_until": result.valid_until,
                "revoked_at": result.revoked_at,
                "revocation_reason": result.revocation_reason,
            }
        )
    return out
