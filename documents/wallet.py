"""The document wallet: who sees what, keeping papers, issued results, reuse in drafts.

Access: a personal item is its owner's alone. An organisation's items are seen
(and may be attached to the organisation's dossiers) by every member; only
owners and administrators add or delete them. Anyone else gets 404, as for
dossiers.

Sharing bytes with attachments: "attach from wallet" makes an attachment that
points at the wallet's stored object (no copy). Objects are reference-counted
by query: the wallet stores its own files under `wallet/` (which dossiers never
delete, see `dossiers.attachments.SHARED_PREFIXES`), and deleting a wallet item
deletes its file only when no attachment refers to it any more; the last
attachment's removal leaves an orphan that `sweep_orphan_files` removes.
Results stay where the dossier keeps them (`results/`) and are never deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth.models import Membership, User
from backend.commits import RelaxedCommit
from backend.errors import NotFound, PayloadTooLarge, PermissionDenied, Unprocessable
from backend.joined_read import JoinedRead
from documents.models import WALLET_PREFIX, WalletItem, wallet_path
from dossiers.attachments import (
    SharedFile,
    attach_shared,
    check_upload,
    clean_original_name,
    prepare_content,
)
from dossiers.deadlines import business_tz
from dossiers.models import (
    WALLET_FILES,
    WALLET_THUMBNAILS,
    Attachment,
    DocumentType,
    Dossier,
    RequiredDocument,
    ResultDocument,
)
from dossiers.uploads import count_pdf_pages

WRITER_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN})
TITLE_MAX_CHARS = 255
# Stored objects whose references are read in one statement per table.
SWEEP_BATCH = 500


def today() -> dt.date:
    return timezone.localtime(timezone.now(), business_tz()).date()


def visible_items(user: User) -> QuerySet[WalletItem]:
    """The user's own items and those of every organisation they belong to."""
    return WalletItem.objects.filter(
        Q(user=user) | Q(organisation__memberships__user=user)
    ).distinct()


def _role(user: User, organisation_id: uuid.UUID) -> str | None:
    return (
        Membership.objects.filter(organisation_id=organisation_id, user=user)
        .values_list("role", flat=True)
        .first()
    )


def access_item(user: User, item_id: uuid.UUID | str) -> WalletItem:
    """The item if `user` may see it (404 otherwise). A change reads and locks the
    item's row with a read of its own (`_LOCKED_TO_ATTACH`, `_LOCKED_TO_DELETE`) and
    checks the writer's role there (`_check_access(..., write=True)`)."""
    try:
        key = uuid.UUID(str(item_id))
    except ValueError as exc:
        raise NotFound() from exc
    item = WalletItem.objects.select_related("document_type", "result").filter(pk=key).first()
    if item is None:
        raise NotFound()
    _check_access(user, item)
    return item


def _check_access(user: User, item: WalletItem, *, write: bool = False) -> None:
    if item.user_id is not None:
        if item.user_id != user.pk:
            raise NotFound()
        return
    role = _role(user, item.organisation_id)  # type: ignore[arg-type]
    if role is None:
        raise NotFound()
    if write and role not in WRITER_ROLES:
        raise _read_only()


def _read_only() -> PermissionDenied:
    return PermissionDenied(
        "wallet_read_only",
        _("Only the organisation's owners and administrators can change its wallet."),
    )


def _owner_scope(user: User, organisation_id: uuid.UUID | None) -> Q:
    if organisation_id is None:
        return Q(user=user)
    role = _role(user, organisation_id)
    if role is None:
        raise NotFound("organisation_not_found", _("No such organisation."))
    if role not in WRITER_ROLES:
        raise _read_only()
    return Q(organisation_id=organisation_id)


def _document_type(code: str | None) -> DocumentType | None:
    if not code:
        return None
    document_type = DocumentType.objects.filter(code=code).first()
    if document_type is None:
        raise Unprocessable(
            details=[
                {
                    "field": "document_type",
                    "location": "form",
                    "code": "unknown_document_type",
                    "message": str(_("Not a document type of the catalogue.")),
                }
            ]
        )
    return document_type


def add_item(
    user: User,
    *,
    upload: IO[bytes],
    size: int,
    original_name: str = "",
    title: str = "",
    document_type: str | None = None,
    expires_on: dt.date | None = None,
    organisation_id: uuid.UUID | None = None,
) -> WalletItem:
    """Keep a paper in the wallet: the attachment pipeline (type from magic bytes,
    photos re-encoded without EXIF/GPS, PDFs scanned for active content), its limits."""
    scope = _owner_scope(user, organisation_id)
    kind_of_type = _document_type(document_type)
    kind = check_upload(upload, size)
    content = prepare_content(kind, upload)
    digest = hashlib.sha256(content.data).hexdigest()
    stored: list[str] = []
    try:
        with transaction.atomic():
            # One change at a time per user: the limits below cannot be raced past.
            list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk"))
            owned = WalletItem.objects.filter(scope)
            if owned.count() >= settings.WALLET_MAX_ITEMS:
                raise Unprocessable(
                    "wallet_full",
                    _("The wallet holds at most %(limit)s papers.")
                    % {"limit": settings.WALLET_MAX_ITEMS},
                    details={"max_items": settings.WALLET_MAX_ITEMS},
                )
            used = owned.filter(source=WalletItem.Source.UPLOAD).aggregate(t=Sum("size"))["t"] or 0
            quota = settings.WALLET_QUOTA_BYTES
            if used + len(content.data) > quota:
                raise PayloadTooLarge(
                    "quota_exceeded",
                    _("The wallet is full (%(limit)s MB). Delete some papers first.")
                    % {"limit": quota // 2**20},
                    details={"used_bytes": used, "quota_bytes": quota},
                )
            file_name = default_storage.save(wallet_path(None, ""), ContentFile(content.data))
            stored.append(file_name)
            thumbnail = ""
            if content.thumbnail is not None:
                thumbnail = default_storage.save(
                    wallet_path(None, ""), ContentFile(content.thumbnail)
                )
                stored.append(thumbnail)
            name = clean_original_name(original_name)
            return WalletItem.objects.create(
                user=user if organisation_id is None else None,
                organisation_id=organisation_id,
                source=WalletItem.Source.UPLOAD,
                document_type=kind_of_type,
                title=(title.strip() or name or (kind_of_type.name if kind_of_type else ""))[
                    :TITLE_MAX_CHARS
                ]
                or "—",
                kind=content.kind,
                file=file_name,
                thumbnail=thumbnail,
                content_type=content.content_type,
                size=len(content.data),
                sha256=digest,
                width=content.width,
                height=content.height,
                pages=content.pages,
                expires_on=expires_on,
                added_by=user,
            )
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


# The paper to delete, row-locked: its own row only, no joins, with what the access
# check and the files need, in one statement compiled once (prepared with the pool).
# The lock waits for an attach holding the paper (`_LOCKED_TO_ATTACH`), whose
# attachment then keeps the file; nothing else is locked, and nothing needs to be:
# the paper's type and result rows are PROTECTed from deletion and not changed here.
_LOCKED_TO_DELETE = JoinedRead(
    WalletItem, ("user", "organisation", "file", "thumbnail"), for_update=True
)


def delete_item(user: User, item_id: uuid.UUID | str) -> None:
    """Remove an item; its file goes once the deletion commits, unless an attachment
    of some dossier still points at it (then the dossier keeps it)."""
    with transaction.atomic():
        try:
            key = uuid.UUID(str(item_id))
            item = _LOCKED_TO_DELETE.get(pk=key)
        except (ValueError, WalletItem.DoesNotExist) as exc:
            raise NotFound() from exc
        _check_access(user, item, write=True)
        names = [name for name in (item.file, item.thumbnail) if name]
        item.delete()
        transaction.on_commit(lambda: delete_unreferenced(names))


def _referenced(names: list[str]) -> set[str]:
    """Those of the wallet's `names` an attachment or a wallet paper still points at:
    one statement per table for the whole list, on the partial indexes of the
    attachments made from the wallet and the wallet's own file and thumbnail indexes
    (never a read of every attachment: 4.85 M at a province's size)."""
    found: set[str] = set()
    for model, files, thumbnails in (
        (Attachment, WALLET_FILES, WALLET_THUMBNAILS),
        (WalletItem, Q(), Q()),
    ):
        rows = model.objects.filter(
            (files & Q(file__in=names)) | (thumbnails & Q(thumbnail__in=names))
        ).values_list("file", "thumbnail")
        found.update(name for row in rows for name in row if name in names)
    return found


def delete_unreferenced(names: list[str]) -> list[str]:
    """Delete the wallet's own objects among `names` that nothing refers to."""
    return _delete_orphans([name for name in names if name.startswith(WALLET_PREFIX)])


def _delete_orphans(names: list[str], before: dt.datetime | None = None) -> list[str]:
    """Delete those of the wallet's `names` nothing points at (and, with `before`,
    stored before it: see `_settled`), `SWEEP_BATCH` at a time."""
    deleted = []
    for start in range(0, len(names), SWEEP_BATCH):
        batch = names[start : start + SWEEP_BATCH]
        kept = _referenced(batch)
        for name in batch:
            if name not in kept and (before is None or _settled(name, before)):
                default_storage.delete(name)
                deleted.append(name)
    return deleted


def _settled(name: str, before: dt.datetime) -> bool:
    """Whether the object was stored before `before`. A paper being kept stores its
    file before its row commits: a younger object may belong to a row not visible
    yet, and is left for the next sweep."""
    try:
        return default_storage.get_modified_time(name) < before
    except FileNotFoundError:
        return False


def sweep_orphan_files() -> list[str]:
    """Wallet objects left behind when the last attachment pointing at an already
    deleted wallet item went away (periodic job). Objects younger than
    `WALLET_ORPHAN_GRACE_SECONDS` are left alone (see `_settled`)."""
    try:
        directories, _files = default_storage.listdir(WALLET_PREFIX.rstrip("/"))
    except FileNotFoundError:
        return []
    names: list[str] = []
    for directory in directories:
        _dirs, files = default_storage.listdir(f"{WALLET_PREFIX}{directory}")
        names.extend(f"{WALLET_PREFIX}{directory}/{name}" for name in files)
    # An object stored before `before` with no row pointing at it stays so: only a
    # wallet paper's row lets an attachment point at its objects.
    before = timezone.now() - dt.timedelta(seconds=settings.WALLET_ORPHAN_GRACE_SECONDS)
    return _delete_orphans(names, before)


# The paper to attach, row-locked, in one statement compiled once (prepared with the
# pool): the fields a shared file and the checks need, and the transaction's relaxed
# commit (see attach_from_wallet) as a column.
_LOCKED_TO_ATTACH = JoinedRead(
    WalletItem,
    (
        *("user", "organisation", "document_type", "result", "expires_on", "title"),
        *("kind", "file", "thumbnail", "content_type", "size", "sha256"),
        *("width", "height", "pages"),
    ),
    annotations={"relaxed_commit": RelaxedCommit()},
    for_update=True,
)


def _lock_to_attach(user: User, item_id: uuid.UUID | str) -> WalletItem:
    """`access_item(user, item_id)` for an attach, row-locked, in one statement that
    also relaxes the transaction's commit."""
    try:
        key = uuid.UUID(str(item_id))
        item = _LOCKED_TO_ATTACH.get(pk=key)
    except (ValueError, WalletItem.DoesNotExist) as exc:
        raise NotFound() from exc
    _check_access(user, item)
    return item


def _lock_result(result_id: uuid.UUID) -> dt.datetime | None:
    """When the issued result `result_id` was revoked (None: it stands), read under its
    row lock, which `dossiers.results.revoke_result` takes first: a revocation that
    committed before is seen here, and one that comes later waits for the attach to
    commit, then finds its attachment (and shows it revoked)."""
    return (
        ResultDocument.objects.select_for_update(no_key=True)
        .filter(pk=result_id)
        .values_list("revoked_at", flat=True)
        .get()
    )


def attach_from_wallet(
    user: User, dossier_id: uuid.UUID | str, *, item_id: uuid.UUID | str, document_code: str
) -> tuple[Attachment, bool]:
    """Attach a wallet paper to a draft's required document without copying bytes.

    One transaction of six statements: the paper's row lock (which relaxes the
    commit), the dossier's, the document with the dossier's counts, the attachment,
    the dossier's version (`attach_shared`), and the commit; an issued result's row
    lock besides (`_lock_result`), in the order revocation takes it: the result, then
    dossiers.
    """
    with transaction.atomic():
        # Pending state only (a draft's or a supplement's paper, sent later by a
        # durable submit): like an OTP challenge, it may skip the WAL flush; a
        # crash in the next fraction of a second loses the tap, not a dossier.
        # The item's row lock keeps a concurrent delete from removing the file
        # between our check and the attachment row.
        item = _lock_to_attach(user, item_id)
        if item.expires_on is not None and item.expires_on < today():
            raise Unprocessable("wallet_item_expired", _("This paper has expired."))
        if item.result_id is not None and _lock_result(item.result_id) is not None:
            raise Unprocessable("wallet_item_revoked", _("This result was revoked."))
        return attach_shared(
            user,
            dossier_id,
            document_code=document_code,
            # Untyped papers are never offered, and never accepted either.
            document_type_id=item.document_type_id or 0,
            # An organisation's papers serve its own dossiers only.
            owner_organisation_id=item.organisation_id,
            shared=SharedFile(
                kind=item.kind,
                file=item.file,
                thumbnail=item.thumbnail,
                content_type=item.content_type,
                size=item.size,
                sha256=item.sha256,
                width=item.width,
                height=item.height,
                pages=item.pages,
                original_name=item.title,
            ),
        )


def offers(user: User, dossier: Dossier) -> list[tuple[RequiredDocument, list[WalletItem]]]:
    """For each required document: the unexpired, unrevoked wallet papers of an
    accepted type and kind that may be used for this dossier."""
    scope = Q(user=user)
    if dossier.organisation_id is not None:
        scope |= Q(organisation_id=dossier.organisation_id)
    candidates = list(
        WalletItem.objects.filter(scope, document_type__isnull=False)
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=today()))
        .exclude(result__revoked_at__isnull=False)
        .select_related("document_type")
    )
    kinds = {"image": "photo", "pdf": "pdf"}
    out = []
    for document in dossier.procedure.documents.prefetch_related("accepted_types"):
        accepted = {t.pk for t in document.accepted_types.all()}
        out.append(
            (
                document,
                [
                    item
                    for item in candidates
                    if item.document_type_id in accepted
                    and kinds[item.kind] in document.accepted_kinds
                ],
            )
        )
    return out


def add_issued_result(result_id: uuid.UUID | str) -> WalletItem | None:
    """Put an issued result in its holder's wallet (the organisation's, for business
    dossiers). Idempotent: the subscriber may run twice."""
    with transaction.atomic():
        result = (
            ResultDocument.objects.select_related("dossier__procedure__result_type")
            .select_for_update(of=("self",))
            .filter(pk=result_id)
            .first()
        )
        if result is None:
            return None
        existing = WalletItem.objects.filter(result=result).first()
        if existing is not None:
            return existing
        dossier = result.dossier
        with default_storage.open(result.file, "rb") as stored:
            pages = count_pdf_pages(stored.read())
        return WalletItem.objects.create(
            user=None if dossier.organisation_id else dossier.applicant,
            organisation_id=dossier.organisation_id,
            source=WalletItem.Source.RESULT,
            document_type=dossier.procedure.result_type,
            title=dossier.procedure.name[:TITLE_MAX_CHARS],
            kind=WalletItem.Kind.PDF,
            file=result.file,
            content_type="application/pdf",
            size=result.size,
            sha256=result.sha256,
            pages=pages,
            expires_on=result.valid_until,
            result=result,
        )
