"""Attaching files to a dossier's required documents, and removing them.

An upload is checked and processed (decoding, re-encoding, PDF scanning) before
any lock is taken and before any query; then, in one transaction with the dossier
row locked, the dossier is checked (who may see it, its state, the document, the
limits), the files are stored and the row is written. If anything fails after a
file reached the storage, the file is deleted again: no row without its file, no
file without its row.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, IntegerField, OuterRef, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _

from auth.models import User
from backend.compiled_rows import CompiledRows, Marker
from backend.errors import (
    ApiError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unprocessable,
)
from backend.row_writes import create_row, save_fields
from dossiers.access import access_dossier, lock_for_papers, may_act_for
from dossiers.models import (
    RESULTS_PREFIX,
    WALLET_OBJECTS_PREFIX,
    Attachment,
    Dossier,
    RequiredDocument,
    attachment_path,
)
from dossiers.results import result_revoked_at
from dossiers.uploads import (
    HEAD_BYTES,
    IMAGE,
    UnsupportedFileType,
    detect_kind,
    inspect_pdf,
    process_image,
)

# A dossier's papers can change only while the citizen holds it.
EDITABLE_STATUSES = frozenset({Dossier.Status.DRAFT, Dossier.Status.SUPPLEMENT_REQUESTED})

# What a required document accepts (RequiredDocument.Kind) for each kind of file.
DOCUMENT_KIND = {
    Attachment.Kind.IMAGE: RequiredDocument.Kind.PHOTO,
    Attachment.Kind.PDF: RequiredDocument.Kind.PDF,
}

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredContent:
    kind: str
    content_type: str
    data: bytes
    thumbnail: bytes | None
    width: int | None = None
    height: int | None = None
    pages: int | None = None


class _AlreadyAttached(Exception):
    def __init__(self, attachment: Attachment) -> None:
        self.attachment = attachment


def access_attachment(
    user: User, dossier_id: uuid.UUID | str, attachment_id: uuid.UUID | str
) -> Attachment:
    """The attachment if `user` may see its dossier; 404 otherwise."""
    dossier = access_dossier(user, dossier_id)
    return _attachment_of(dossier, attachment_id)


def _attachment_of(dossier: Dossier, attachment_id: uuid.UUID | str) -> Attachment:
    try:
        key = uuid.UUID(str(attachment_id))
    except ValueError as exc:
        raise NotFound() from exc
    attachment = dossier_papers(dossier).filter(pk=key).first()
    if attachment is None:
        raise NotFound()
    attachment.dossier = dossier
    return attachment


def dossier_papers(dossier: Dossier) -> QuerySet[Attachment]:
    """The dossier's attachments as the citizen's routes show them: with
    `result_revoked_at` (dossiers/results.py), in the same statement."""
    return Attachment.objects.filter(dossier=dossier).annotate(
        result_revoked_at=result_revoked_at()
    )


def _same_content(dossier: Dossier, digest: str) -> Attachment | None:
    """The dossier's attachment of these bytes, if any, with `dossier` as its dossier."""
    attachment = dossier_papers(dossier).filter(sha256=digest).first()
    if attachment is not None:
        attachment.dossier = dossier
    return attachment


def _ensure_editable(dossier: Dossier) -> None:
    if dossier.status not in EDITABLE_STATUSES:
        raise _locked(dossier)


def _locked(dossier: Dossier) -> Conflict:
    return Conflict(
        "dossier_locked",
        _("Files can be changed only while the dossier is a draft or a supplement is requested."),
        details={"status": dossier.status},
    )


def removal_refusal(user: User, attachment: Attachment) -> ApiError | None:
    """Why `user` may not remove `attachment` now, or None when they may: the one rule
    of `delete_attachment` and of the `can_remove` the app shows.

    403 `not_uploader` unless they attached it, are the dossier's applicant, or an owner
    or admin of its organisation (`may_act_for`); then 409 `dossier_locked` unless the
    dossier is a draft or a supplement is requested. `attachment.dossier` should be the
    dossier as read for `user` (`access_attachment` and the list set it), one instance
    for a page of its papers: the caller's role in the organisation is read once.
    """
    dossier = attachment.dossier
    if not may_act_for(user, dossier, made_by_id=attachment.uploaded_by_id):
        return PermissionDenied(
            "not_uploader",
            _(
                "Only whoever attached this file, the dossier's applicant and the "
                "organisation's owners and administrators can remove it."
            ),
        )
    if dossier.status not in EDITABLE_STATUSES:
        return _locked(dossier)
    return None


def _check_limits(document: RequiredDocument, in_dossier: int, for_document: int) -> None:
    limit = settings.ATTACHMENT_MAX_PER_DOSSIER
    if in_dossier >= limit:
        raise Unprocessable(
            "too_many_files",
            _("A dossier can have at most %(limit)s files.") % {"limit": limit},
            details={"max_files": limit},
        )
    if for_document >= document.max_files:
        raise Unprocessable(
            "too_many_files_for_document",
            _("This document takes at most %(limit)s files.") % {"limit": document.max_files},
            details={"document_code": document.code, "max_files": document.max_files},
        )


def check_upload(upload: IO[bytes], size: int) -> str:
    """The kind of an uploaded file (from its magic bytes), within ATTACHMENT_MAX_FILE_BYTES.

    Every upload of a paper (a dossier's attachment, a wallet item) starts here.
    """
    max_bytes = settings.ATTACHMENT_MAX_FILE_BYTES
    if size > max_bytes:
        raise PayloadTooLarge(
            "file_too_large",
            _("The file is too large (at most %(limit)s MB).") % {"limit": max_bytes // 2**20},
            details={"size": size, "max_bytes": max_bytes},
        )
    upload.seek(0)
    kind = detect_kind(upload.read(HEAD_BYTES))
    if kind is None:
        raise UnsupportedFileType()
    return kind


def _check_quota(user: User, new_bytes: int) -> None:
    quota = settings.ATTACHMENT_QUOTA_BYTES_PER_USER
    used = Attachment.objects.filter(uploaded_by=user).aggregate(total=Sum("size"))["total"] or 0
    if used + new_bytes > quota:
        raise PayloadTooLarge(
            "quota_exceeded",
            _("You have used all the space for files (%(limit)s MB). Delete some files first.")
            % {"limit": quota // (1024 * 1024)},
            details={"used_bytes": used, "quota_bytes": quota},
        )


def _sha256(upload: IO[bytes]) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    while chunk := upload.read(_CHUNK):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def prepare_content(kind: str, upload: IO[bytes]) -> StoredContent:
    """Decode and clean an image, or check a PDF: what will be stored (no I/O)."""
    upload.seek(0)
    if kind == IMAGE:
        image = process_image(upload)
        return StoredContent(
            kind=Attachment.Kind.IMAGE,
            content_type="image/jpeg",
            data=image.data,
            thumbnail=image.thumbnail,
            width=image.width,
            height=image.height,
        )
    info = inspect_pdf(upload)
    upload.seek(0)
    return StoredContent(
        kind=Attachment.Kind.PDF,
        content_type="application/pdf",
        data=upload.read(),
        thumbnail=None,
        pages=info.pages,
    )


def clean_original_name(name: str) -> str:
    """The file name as shown to people: no path, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:255]


def add_attachment(
    user: User,
    dossier_id: uuid.UUID | str,
    *,
    document_code: str,
    upload: IO[bytes],
    size: int,
    original_name: str = "",
) -> tuple[Attachment, bool]:
    """Attach an uploaded file to one required document of a dossier.

    Returns `(attachment, created)`; the same content uploaded again to the same
    dossier returns the existing attachment with `created=False`.

    The file is checked and processed first, with no query and no lock (its size,
    kind and the pipeline's own limits bound that work; what an unlocked read of the
    dossier would refuse is refused under the lock anyway, and the quota, the one
    limit that grows with uploads, was only ever checked there). Then one
    transaction: the dossier's row lock, which is the access check (404), its state
    (409), the document, whether it takes this kind of file, the same bytes already
    there and the counts (`_document_to_attach`, one statement), the quota, the row.
    """
    kind = check_upload(upload, size)
    digest = _sha256(upload)
    content = prepare_content(kind, upload)
    return _store(
        user, dossier_id, document_code, digest, content, clean_original_name(original_name)
    )


def _unknown_document(document_code: str) -> Unprocessable:
    return Unprocessable(
        "unknown_document",
        _("This procedure does not ask for this document."),
        details={"document_code": document_code},
    )


def _check_kind(document: RequiredDocument, kind: str) -> None:
    if DOCUMENT_KIND[Attachment.Kind(kind)] not in document.accepted_kinds:
        raise Unprocessable(
            "kind_not_accepted",
            _("This document does not accept this kind of file."),
            details={"kind": kind, "accepted_kinds": list(document.accepted_kinds)},
        )


def _store(
    user: User,
    dossier_id: uuid.UUID | str,
    document_code: str,
    digest: str,
    content: StoredContent,
    original_name: str,
) -> tuple[Attachment, bool]:
    stored: list[str] = []
    try:
        with transaction.atomic():
            dossier = lock_for_papers(user, dossier_id)
            _ensure_editable(dossier)
            # Read under the lock: a statement that waited for it would count from
            # before the upload that held it.
            document = _document_to_attach(
                dossier, document_code=document_code, document_type_id=0, sha256=digest
            )
            if document is None:
                raise _unknown_document(document_code)
            _check_kind(document, content.kind)
            if document.same:  # type: ignore[attr-defined]
                existing = _same_content(dossier, digest)
                if existing is not None:
                    return existing, False
            _check_limits(document, document.total, document.here)  # type: ignore[attr-defined]
            # One upload at a time per user, so two dossiers cannot both take the
            # last megabytes of the quota.
            list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk"))
            _check_quota(user, len(content.data))
            file_name = default_storage.save(attachment_path(None, ""), ContentFile(content.data))
            stored.append(file_name)
            thumbnail_name = ""
            if content.thumbnail is not None:
                thumbnail_name = default_storage.save(
                    attachment_path(None, ""), ContentFile(content.thumbnail)
                )
                stored.append(thumbnail_name)
            try:
                with transaction.atomic():
                    attachment = Attachment.objects.create(
                        dossier=dossier,
                        document_code=document.code,
                        kind=content.kind,
                        file=file_name,
                        thumbnail=thumbnail_name,
                        content_type=content.content_type,
                        size=len(content.data),
                        sha256=digest,
                        width=content.width,
                        height=content.height,
                        pages=content.pages,
                        original_name=original_name,
                        uploaded_by=user,
                    )
            except IntegrityError as exc:
                # The same content won a race through another path.
                twin = _same_content(dossier, digest)
                if twin is None:
                    raise
                raise _AlreadyAttached(twin) from exc
            _touch(dossier)
    except _AlreadyAttached as duplicate:
        _delete_files(stored)
        return duplicate.attachment, False
    except BaseException:
        _delete_files(stored)
        raise
    return attachment, True


def delete_attachment(
    user: User, dossier_id: uuid.UUID | str, attachment_id: uuid.UUID | str
) -> None:
    """Remove an attachment; its files leave the storage once the deletion commits."""
    with transaction.atomic():
        dossier = lock_for_papers(user, dossier_id)
        attachment = _attachment_of(dossier, attachment_id)
        refusal = removal_refusal(user, attachment)
        if refusal is not None:
            raise refusal
        names = [name for name in (attachment.file.name, attachment.thumbnail.name) if name]
        attachment.delete()
        _touch(dossier)
        transaction.on_commit(lambda: _delete_files(names))


def _touch(dossier: Dossier) -> None:
    """The dossier's representation (its papers) changed: a new ETag for pollers.

    `dossier` is row-locked (`lock_for_papers`, which read its version): the version
    read plus one is `version + 1`, written by an UPDATE made once."""
    dossier.version += 1
    save_fields(dossier, ["version", "updated_at"])  # updated_at: auto_now


def _delete_files(names: list[str]) -> None:
    for name in deletable(names):
        default_storage.delete(name)


# Stored objects under these prefixes belong to another owner (the document
# wallet, `documents/`, and issued results): an attachment may point at one (no
# copy of the bytes) but removing the attachment never removes the object; its
# owner does, once nothing refers to it any more.
SHARED_PREFIXES = (WALLET_OBJECTS_PREFIX, RESULTS_PREFIX)


def deletable(names: list[str]) -> list[str]:
    return [name for name in names if name and not name.startswith(SHARED_PREFIXES)]


@dataclass(frozen=True)
class SharedFile:
    """An object already in the storage (a wallet paper), attached without a copy."""

    kind: str
    file: str
    thumbnail: str
    content_type: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    pages: int | None
    original_name: str


def attach_shared(
    user: User,
    dossier_id: uuid.UUID | str,
    *,
    document_code: str,
    shared: SharedFile,
    document_type_id: int | None = None,
    owner_organisation_id: uuid.UUID | None = None,
) -> tuple[Attachment, bool]:
    """Attach a stored object to a required document: the attachment points at the
    same storage name. Same limits as an upload except the byte quota (no bytes
    are added). With `document_type_id`, the document must accept that type; with
    `owner_organisation_id`, only that organisation's dossiers may use the object.
    Call inside the caller's transaction when it locks the source.

    Four statements (this is the app's "use from wallet" tap): the dossier's row
    lock (its few fields, compiled once), the document with its type check and the
    dossier's counts for the limits and the duplicate (read under the lock: a
    statement that waited for the lock would count from before it; compiled once
    too), the insert and the version bump (both written by statements made once,
    backend/row_writes.py: the ORM builds them anew on every call).
    """
    if not shared.file.startswith(SHARED_PREFIXES):
        raise ValueError("only shared objects can be attached by reference")
    with transaction.atomic(savepoint=False):
        dossier = lock_for_papers(user, dossier_id)
        if owner_organisation_id is not None and dossier.organisation_id != owner_organisation_id:
            raise NotFound()
        _ensure_editable(dossier)
        document = _document_to_attach(
            dossier,
            document_code=document_code,
            document_type_id=document_type_id or 0,
            sha256=shared.sha256,
        )
        if document is None:
            raise _unknown_document(document_code)
        if document_type_id is not None and not document.type_accepted:  # type: ignore[attr-defined]
            raise Unprocessable(
                "document_type_not_accepted",
                _("This document does not accept this kind of paper."),
                details={"document_code": document_code},
            )
        _check_kind(document, shared.kind)
        if document.same:  # type: ignore[attr-defined]
            existing = _same_content(dossier, shared.sha256)
            if existing is not None:
                return existing, False
        _check_limits(document, document.total, document.here)  # type: ignore[attr-defined]
        attachment = Attachment(
            dossier=dossier,
            document_code=document.code,
            kind=shared.kind,
            file=shared.file,
            thumbnail=shared.thumbnail,
            content_type=shared.content_type,
            size=shared.size,
            sha256=shared.sha256,
            width=shared.width,
            height=shared.height,
            pages=shared.pages,
            original_name=shared.original_name[:255],
            uploaded_by=user,
        )
        create_row(attachment)  # the ORM's INSERT, made once (backend/row_writes.py)
        _touch(dossier)
        return attachment, True


def _paper_counts(dossier_id: uuid.UUID, *, document_code: str, sha256: str) -> dict[str, RawSQL]:
    """The dossier's attachments counted as columns of another query: all of them
    (`total`), those of `document_code` (`here`), those of these bytes (`same`).

    Written out (the model's own quoted names, the values as parameters): as ORM
    subqueries they cost more Python to build and compile than the rest of the attach.
    """
    meta = Attachment._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    dossier_column = quote(meta.get_field("dossier").column)
    code = quote(meta.get_field("document_code").column)
    digest = quote(meta.get_field("sha256").column)
    key = meta.get_field("dossier").get_db_prep_value(dossier_id, connection)
    count = f"(SELECT COUNT(*) FROM {table} a WHERE a.{dossier_column} = %s"  # noqa: S608  # nosec B608
    return {
        "total": RawSQL(f"{count})", (key,), IntegerField()),  # noqa: S611  # nosec B611
        "here": RawSQL(f"{count} AND a.{code} = %s)", (key, document_code), IntegerField()),  # noqa: S611  # nosec B611
        "same": RawSQL(f"{count} AND a.{digest} = %s)", (key, sha256), IntegerField()),  # noqa: S611  # nosec B611
    }


# The document of an attach by reference, its type check and the dossier's counts: the
# model's fields first, in its order (`RequiredDocument.from_db`), then the annotations.
_DOCUMENT_FIELDS = ("id", "code", "accepted_kinds", "max_files")
_DOCUMENT_COLUMNS = (*_DOCUMENT_FIELDS, "type_accepted", "total", "here", "same")


def _document_rows(
    procedure_id: int, document_code: str, document_type_id: int, dossier_id: uuid.UUID, sha256: str
) -> QuerySet[RequiredDocument, tuple[Any, ...]]:
    accepted = RequiredDocument.accepted_types.through.objects.filter(
        requireddocument_id=OuterRef("pk"), documenttype_id=document_type_id
    )
    return (
        RequiredDocument.objects.filter(procedure_id=procedure_id, code=document_code)
        .annotate(
            type_accepted=Exists(accepted),
            **_paper_counts(dossier_id, document_code=document_code, sha256=sha256),
        )
        .values_list(*_DOCUMENT_COLUMNS)[:1]  # as first(): in the model's order
    )


# Compiled once (backend/compiled_rows.py), prepared with the pool: building and
# compiling it cost more than the rest of the attach's statements. The markers are
# values no call passes; the dossier's key is in each of its three counts, the
# document's code in the condition and in its count.
_DOCUMENT_TO_ATTACH = CompiledRows(
    {
        "procedure_id": Marker(2_147_480_001),
        "document_code": Marker("marker:document-code", times=2),
        "document_type_id": Marker(2_147_480_002),
        "dossier_id": Marker(uuid.UUID("00000000-0000-4000-8000-0000000da7ac"), times=3),
        "sha256": Marker("marker:sha256"),
    },
    shapes=1,
    prepare=True,
)


def _document_to_attach(
    dossier: Dossier, *, document_code: str, document_type_id: int, sha256: str
) -> RequiredDocument | None:
    """The dossier's required document `document_code`, its `code`, `accepted_kinds` and
    `max_files` loaded, with `type_accepted` (whether it accepts `document_type_id`),
    `total`, `here` and `same` (`_paper_counts`); None if the procedure has no such
    document."""
    rows = _DOCUMENT_TO_ATTACH.rows(
        "document",
        _document_rows,
        procedure_id=dossier.procedure_id,
        document_code=document_code,
        document_type_id=document_type_id,
        dossier_id=dossier.pk,
        sha256=sha256,
    )
    if not rows:
        return None
    row = rows[0]
    fields = len(_DOCUMENT_FIELDS)
    document = RequiredDocument.from_db(dossier._state.db, _DOCUMENT_FIELDS, row[:fields])
    for name, value in zip(_DOCUMENT_COLUMNS[fields:], row[fields:], strict=True):
        setattr(document, name, value)
    return document


def read_stored(name: str) -> IO[bytes]:
    """Open a stored file for streaming."""
    if not name:
        raise NotFound()
    try:
        return default_storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise NotFound() from exc
