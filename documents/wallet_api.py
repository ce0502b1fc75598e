"""The document wallet (kho giấy tờ) and "use from wallet" in drafts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import IO, Any, Literal, cast

from django.http import FileResponse, HttpRequest
from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile

from auth.bearer import bearer, current_user
from backend.errors import ErrorOut, NotFound
from backend.idempotency import idempotent
from backend.openapi_extra import file_download
from backend.pagination import PageParams, page_of, paginate
from backend.times import form_date_text
from documents import wallet
from documents.models import WalletItem
from dossiers.access import access_dossier
from dossiers.attachments import read_stored
from dossiers.attachments_api import AttachmentOut, as_now
from dossiers.models import Attachment, DocumentType

router = Router(tags=["wallet"])
dossier_router = Router(tags=["wallet"])


class DocumentTypeOut(Schema):
    code: str
    name: str
    name_en: str


class WalletItemOut(Schema):
    id: uuid.UUID
    owner: Literal["user", "organisation"]
    organisation_id: uuid.UUID | None
    source: Literal["upload", "result"]
    document_type: DocumentTypeOut | None
    title: str
    kind: Literal["image", "pdf"]
    content_type: str
    size: int
    sha256: str
    pages: int | None
    expires_on: dt.date | None
    expired: bool
    verification_code: str | None = Field(description="For issued results")
    revoked: bool
    created_at: dt.datetime

    @staticmethod
    def resolve_owner(obj: WalletItem) -> str:
        return "user" if obj.user_id else "organisation"

    @staticmethod
    def resolve_expired(obj: WalletItem) -> bool:
        return obj.expires_on is not None and obj.expires_on < wallet.today()

    @staticmethod
    def resolve_verification_code(obj: WalletItem) -> str | None:
        return obj.result.verification_code if obj.result_id else None  # type: ignore[union-attr]

    @staticmethod
    def resolve_revoked(obj: WalletItem) -> bool:
        return bool(obj.result_id and obj.result.revoked_at)  # type: ignore[union-attr]


class WalletFilters(PageParams):
    organisation_id: uuid.UUID | None = Field(
        None, description="The organisation's wallet instead of your own"
    )


@router.get(
    "/document-types",
    auth=bearer,
    response={200: list[DocumentTypeOut], 401: ErrorOut},
    summary="The catalogue's document types (for papers kept in the wallet)",
)
def document_types(request: HttpRequest) -> Any:
    return list(DocumentType.objects.all())


@router.get(
    "/items",
    auth=bearer,
    response={200: page_of(WalletItemOut), 401: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Your wallet, or an organisation's (newest first)",
)
def list_items(request: HttpRequest, filters: Query[WalletFilters]) -> dict[str, Any]:
    user = current_user(request)
    if filters.organisation_id is None:
        queryset = WalletItem.objects.filter(user=user)
    else:
        if not user.memberships.filter(organisation_id=filters.organisation_id).exists():
            raise NotFound()
        queryset = WalletItem.objects.filter(organisation_id=filters.organisation_id)
    rows, next_cursor = paginate(
        queryset.select_related("document_type", "result"), filters, ("-created_at", "-id")
    )
    return {"items": rows, "next_cursor": next_cursor}


@router.post(
    "/items",
    auth=bearer,
    response={
        201: WalletItemOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        422: ErrorOut,
    },
    summary="Keep a paper (photo or PDF) in the wallet",
    description=(
        "Multipart form: `file`, optional `document_type` (a code of "
        "`GET /wallet/document-types`), `title`, `expires_on`, `organisation_id` (owners "
        "and administrators only). Same pipeline and limits as attachments: photos are "
        "re-encoded without EXIF/GPS, PDFs with active content are refused."
    ),
)
@idempotent
def add_item(
    request: HttpRequest,
    file: File[UploadedFile],
    document_type: Form[str | None] = None,
    title: Form[str] = "",
    expires_on: Form[dt.date | None] = None,
    organisation_id: Form[uuid.UUID | None] = None,
) -> Status[WalletItem]:
    form_date_text(request, "expires_on")  # pydantic reads "0" as 1970-01-01
    item = wallet.add_item(
        current_user(request),
        upload=cast(IO[bytes], file),
        size=file.size or 0,
        original_name=file.name or "",
        title=title[: wallet.TITLE_MAX_CHARS],
        document_type=document_type,
        expires_on=expires_on,
        organisation_id=organisation_id,
    )
    return Status(201, item)


@router.get(
    "/items/{item_id}",
    auth=bearer,
    response={200: WalletItemOut, 401: ErrorOut, 404: ErrorOut},
    summary="One wallet paper",
)
def get_item(request: HttpRequest, item_id: uuid.UUID) -> WalletItem:
    return wallet.access_item(current_user(request), item_id)


@router.get(
    "/items/{item_id}/file",
    auth=bearer,
    response={200: None, 401: ErrorOut, 404: ErrorOut},
    summary="Download a wallet paper",
    openapi_extra=file_download(
        "The paper as stored: a re-encoded photo or the PDF.", "image/jpeg", "application/pdf"
    ),
)
def download_item(request: HttpRequest, item_id: uuid.UUID) -> FileResponse:
    item = wallet.access_item(current_user(request), item_id)
    suffix = ".pdf" if item.kind == WalletItem.Kind.PDF else ".jpg"
    response = FileResponse(
        read_stored(item.file),
        as_attachment=True,
        filename=f"wallet-{str(item.pk)[:8]}{suffix}",
        content_type=item.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@router.delete(
    "/items/{item_id}",
    auth=bearer,
    response={204: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="Remove a paper (dossiers it was attached to keep their copy)",
)
def delete_item(request: HttpRequest, item_id: uuid.UUID) -> Status[None]:
    wallet.delete_item(current_user(request), item_id)
    return Status(204, None)


# --- In a draft ---------------------------------------------------------------------


class FromWalletIn(Schema):
    wallet_item_id: uuid.UUID
    document_code: str = Field(max_length=50)


class OfferOut(Schema):
    document_code: str
    document_name: str
    accepted_types: list[str]
    items: list[WalletItemOut]


@dossier_router.get(
    "/{dossier_id}/wallet-offers",
    auth=bearer,
    response={200: list[OfferOut], 401: ErrorOut, 404: ErrorOut},
    summary="Wallet papers that can be used for each required document",
)
def wallet_offers(request: HttpRequest, dossier_id: uuid.UUID) -> Any:
    """For each required document: unexpired, unrevoked papers of an accepted type
    and kind, from your wallet (and the organisation's, for a business dossier)."""
    user = current_user(request)
    dossier = access_dossier(user, dossier_id)
    return [
        {
            "document_code": document.code,
            "document_name": document.name,
            "accepted_types": [t.code for t in document.accepted_types.all()],
            "items": items,
        }
        for document, items in wallet.offers(user, dossier)
    ]


@dossier_router.post(
    "/{dossier_id}/wallet-attachments",
    auth=bearer,
    response={
        200: AttachmentOut,
        201: AttachmentOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
    },
    summary="Attach a wallet paper to a required document (no copy of the bytes)",
)
# One transaction and nothing else (no byte is copied): the answer is kept in it.
@idempotent(refresh=as_now, one_transaction=True)
def attach_from_wallet(
    request: HttpRequest, dossier_id: uuid.UUID, payload: FromWalletIn
) -> Status[Attachment]:
    attachment, created = wallet.attach_from_wallet(
        current_user(request),
        dossier_id,
        item_id=payload.wallet_item_id,
        document_code=payload.document_code,
    )
    return Status(201 if created else 200, attachment)
