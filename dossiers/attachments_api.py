"""Attachments of a dossier: upload, list, download, delete."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import IO, Any, cast

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile

from auth.bearer import bearer, current_user
from auth.models import User
from backend.errors import ErrorOut, NotFound
from backend.idempotency import idempotent
from backend.pagination import PageParams, page_of, paginate
from backend.params import QueryParams
from backend.times import rfc3339_or_none
from dossiers.access import access_dossier
from dossiers.attachments import (
    access_attachment,
    add_attachment,
    delete_attachment,
    dossier_papers,
    removal_refusal,
)
from dossiers.downloads import Variant, file_response, resolve_download, sign_download
from dossiers.models import Attachment

router = Router(tags=["attachments"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FILE_RESPONSE = {
    "responses": {
        200: {
            "description": "The file, as a download (`Content-Disposition: attachment`).",
            "content": {"image/jpeg": _BINARY, "application/pdf": _BINARY},
        }
    }
}
_THUMBNAIL_RESPONSE = {
    "responses": {
        200: {
            "description": "A JPEG thumbnail (long side about 320 px).",
            "content": {"image/jpeg": _BINARY},
        }
    }
}


def _may_remove(attachment: Attachment, context: dict[str, Any] | None) -> bool:
    """Whether the user of the request being answered may remove the attachment now
    (`removal_refusal`, the rule of the delete route); False without one."""
    request = (context or {}).get("request")
    user = getattr(request, "auth", None)
    return isinstance(user, User) and removal_refusal(user, attachment) is None


def as_now(request: HttpRequest, path: dict[str, Any], answer: Any) -> Any:
    """A replayed answer about an attachment (`@idempotent(refresh=...)`) with
    `can_remove` and the revocation read now: the dossier may have been submitted, the
    caller's role in the organisation changed, the file removed or the result it is
    revoked since the first answer."""
    user = current_user(request)
    try:
        attachment = access_attachment(user, path["dossier_id"], answer["id"])
    except NotFound:
        return {**answer, "can_remove": False}
    revoked_at = AttachmentOut.resolve_revoked_at(attachment)
    return {
        **answer,
        "revoked": revoked_at is not None,
        "revoked_at": rfc3339_or_none(revoked_at),
        "can_remove": removal_refusal(user, attachment) is None,
    }


class AttachmentOut(Schema):
    id: uuid.UUID
    document_code: str
    kind: str = Field(description="`image` (stored as JPEG) or `pdf`")
    content_type: str
    size: int = Field(description="Bytes of the stored file")
    sha256: str = Field(description="SHA-256 (hex) of the file as uploaded")
    width: int | None
    height: int | None
    pages: int | None
    original_name: str
    has_thumbnail: bool
    revoked: bool = Field(
        description="The paper is an issued result (attached from the wallet) that its "
        "agency revoked since: replace it; the dossier cannot be sent with it (422 "
        "`wallet_item_revoked`)"
    )
    revoked_at: dt.datetime | None = Field(description="When that result was revoked")
    can_remove: bool = Field(
        description="You may remove it now: the dossier is a draft or a supplement is "
        "requested, and you attached it, are the dossier's applicant, or an owner or admin "
        "of its organisation (the delete route answers 403 `not_uploader` or 409 "
        "`dossier_locked` otherwise)"
    )
    created_at: dt.datetime

    @staticmethod
    def resolve_has_thumbnail(obj: Attachment) -> bool:
        return bool(obj.thumbnail)

    @staticmethod
    def resolve_revoked(obj: Attachment) -> bool:
        return AttachmentOut.resolve_revoked_at(obj) is not None

    @staticmethod
    def resolve_revoked_at(obj: Attachment) -> dt.datetime | None:
        # Read with the attachment (`dossier_papers`); a new one is no revoked result.
        return getattr(obj, "result_revoked_at", None)

    @staticmethod
    def resolve_can_remove(obj: Attachment, context: dict[str, Any] | None) -> bool:
        return _may_remove(obj, context)


class DownloadUrlOut(Schema):
    url: str = Field(description="Works without a token until `expires_at`")
    expires_at: dt.datetime


class DownloadUrlQuery(QueryParams):
    variant: Variant = "file"


@router.post(
    "/{dossier_id}/attachments",
    auth=bearer,
    response={
        200: AttachmentOut,
        201: AttachmentOut,
        401: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        422: ErrorOut,
    },
    summary="Upload a photo or PDF for one required document",
    description=(
        "Multipart form: `file` and `document_code`. 201 with the new attachment; "
        "200 with the existing one when the same file is already attached to the dossier."
    ),
)
@idempotent(refresh=as_now)
def upload_attachment(
    request: HttpRequest,
    dossier_id: uuid.UUID,
    file: File[UploadedFile],
    document_code: Form[str],
) -> Status[Attachment]:
    attachment, created = add_attachment(
        current_user(request),
        dossier_id,
        document_code=document_code,
        upload=cast(IO[bytes], file),
        size=file.size or 0,
        original_name=file.name or "",
    )
    return Status(201 if created else 200, attachment)


@router.get(
    "/{dossier_id}/attachments",
    auth=bearer,
    response={200: page_of(AttachmentOut), 401: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="List a dossier's attachments (oldest first)",
)
def list_attachments(
    request: HttpRequest, dossier_id: uuid.UUID, params: Query[PageParams]
) -> dict[str, Any]:
    dossier = access_dossier(current_user(request), dossier_id)
    rows, next_cursor = paginate(dossier_papers(dossier), params, ("created_at", "id"))
    for row in rows:
        row.dossier = dossier  # one instance: `can_remove` reads the caller's role once
    return {"items": rows, "next_cursor": next_cursor}


@router.get(
    "/{dossier_id}/attachments/{attachment_id}",
    auth=bearer,
    response={200: AttachmentOut, 401: ErrorOut, 404: ErrorOut},
    summary="Get one attachment",
)
def get_attachment(
    request: HttpRequest, dossier_id: uuid.UUID, attachment_id: uuid.UUID
) -> Attachment:
    return access_attachment(current_user(request), dossier_id, attachment_id)


@router.delete(
    "/{dossier_id}/attachments/{attachment_id}",
    auth=bearer,
    response={204: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Remove an attachment (draft or supplement requested only)",
    description=(
        "Whoever attached the file, the dossier's applicant, and the owners and admins of "
        "the dossier's organisation may remove it; the organisation's other members get "
        "403 `not_uploader`."
    ),
)
def remove_attachment(
    request: HttpRequest, dossier_id: uuid.UUID, attachment_id: uuid.UUID
) -> Status[None]:
    delete_attachment(current_user(request), dossier_id, attachment_id)
    return Status(204, None)


@router.get(
    "/{dossier_id}/attachments/{attachment_id}/download",
    auth=bearer,
    response={401: ErrorOut, 404: ErrorOut},
    openapi_extra=_FILE_RESPONSE,
    summary="Download the stored file",
)
def download_attachment(
    request: HttpRequest, dossier_id: uuid.UUID, attachment_id: uuid.UUID
) -> HttpResponse:
    attachment = access_attachment(current_user(request), dossier_id, attachment_id)
    return cast(HttpResponse, file_response(attachment, "file"))


@router.get(
    "/{dossier_id}/attachments/{attachment_id}/thumbnail",
    auth=bearer,
    response={401: ErrorOut, 404: ErrorOut},
    openapi_extra=_THUMBNAIL_RESPONSE,
    summary="Download the thumbnail of a photo (404 `no_thumbnail` for PDFs)",
)
def download_thumbnail(
    request: HttpRequest, dossier_id: uuid.UUID, attachment_id: uuid.UUID
) -> HttpResponse:
    attachment = access_attachment(current_user(request), dossier_id, attachment_id)
    return cast(HttpResponse, file_response(attachment, "thumbnail"))


@router.get(
    "/{dossier_id}/attachments/{attachment_id}/download-url",
    auth=bearer,
    response={200: DownloadUrlOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="A short-lived URL that downloads the file without the access token",
)
def attachment_download_url(
    request: HttpRequest,
    dossier_id: uuid.UUID,
    attachment_id: uuid.UUID,
    query: Query[DownloadUrlQuery],
) -> dict[str, Any]:
    attachment = access_attachment(current_user(request), dossier_id, attachment_id)
    token, expires_at = sign_download(attachment, query.variant, current_user(request))
    url = request.build_absolute_uri(
        reverse("api-v1:attachment-signed-download", kwargs={"token": token})
    )
    return {"url": url, "expires_at": expires_at}


@router.get(
    "/attachment-downloads/{token}",
    auth=None,
    url_name="attachment-signed-download",
    response={403: ErrorOut, 404: ErrorOut},
    openapi_extra=_FILE_RESPONSE,
    summary="Download through a signed URL (no token; 403 `download_url_expired`)",
)
def signed_download(request: HttpRequest, token: str) -> HttpResponse:
    attachment, variant = resolve_download(token)
    return cast(HttpResponse, file_response(attachment, variant))
