"""The procedure catalogue: search text without diacritics, lookups, localised texts,
and each process's copy of the procedures' required documents.

Citizens type "khai sinh" or "khai sinh" with its marks, "dang ky" or "Đăng ký":
both the stored `Procedure.search_text` and the query go through `backend.text.fold`,
so a plain substring match finds either spelling. `search_text` is written by
the catalogue loader and the admin (`refresh_search_text`), never by `save()`.
Likewise they call `procedure_changed` after an edit, so the cached documents
(`required_documents`) follow.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from backend.errors import NotFound
from backend.text import fold
from dossiers.models import Agency, Procedure


def search_text_for(procedure: Procedure) -> str:
    parts = [procedure.code, procedure.name, procedure.name_en, procedure.field, procedure.field_en]
    return fold(" ".join(part for part in parts if part))


def refresh_search_text(procedure: Procedure) -> None:
    """Recompute and store the search text of one procedure (loader and admin call it)."""
    procedure.search_text = search_text_for(procedure)
    Procedure.objects.filter(pk=procedure.pk).update(search_text=procedure.search_text)


def procedure_changed(procedure: Procedure) -> None:
    """Bump the procedure's version after editing it or its required documents.

    Call it in the transaction that made the change (the admin and the catalogue
    loader do): every process then reads the new version with the next dossier and
    drops its cached copy of the documents (`required_documents`).
    """
    Procedure.objects.filter(pk=procedure.pk).update(version=F("version") + 1)
    procedure.refresh_from_db(fields=["version"])


@dataclass(frozen=True)
class DocumentInfo:
    """What a dossier read shows of one required document (immutable: shared by threads)."""

    code: str
    name: str
    name_en: str
    mandatory: bool
    min_files: int
    max_files: int


_documents: dict[int, tuple[int, tuple[DocumentInfo, ...]]] = {}
_documents_lock = threading.Lock()


def required_documents(procedure: Procedure) -> tuple[DocumentInfo, ...]:
    """The procedure's required documents in order, from this process's memory when it
    holds them for `procedure.version`, else from the database (and remembered).

    Catalogue data changes rarely and every dossier read shows it: keyed by the
    version read with the dossier, the copy can never be older than that row.
    """
    cached = _documents.get(procedure.pk)
    if cached is not None and cached[0] == procedure.version:
        return cached[1]
    documents = tuple(
        DocumentInfo(
            code=document.code,
            name=document.name,
            name_en=document.name_en,
            mandatory=document.mandatory,
            min_files=document.min_files,
            max_files=document.max_files,
        )
        for document in procedure.documents.only(
            "code", "name", "name_en", "mandatory", "min_files", "max_files"
        )
    )
    with _documents_lock:
        _documents.pop(procedure.pk, None)
        while _documents and len(_documents) >= settings.CATALOGUE_DOCUMENTS_CACHE_SIZE:
            del _documents[next(iter(_documents))]  # the least recently stored
        _documents[procedure.pk] = (procedure.version, documents)
    return documents


def forget_required_documents() -> None:
    """Empty this process's copy of the documents (tests start from a clean state)."""
    with _documents_lock:
        _documents.clear()


def search_procedures(queryset: QuerySet[Procedure], query: str) -> QuerySet[Procedure]:
    """Procedures whose search text contains every word of `query`."""
    for word in fold(query).split(" "):
        if word:
            queryset = queryset.filter(search_text__contains=word)
    return queryset


def active_procedures() -> QuerySet[Procedure]:
    return Procedure.objects.filter(is_active=True, agency__is_active=True).select_related("agency")


def filter_by_field(queryset: QuerySet[Procedure], field: str) -> QuerySet[Procedure]:
    return queryset.filter(Q(field__iexact=field) | Q(field_en__iexact=field))


def get_procedure(procedure_id: int) -> Procedure:
    """An active procedure of the catalogue, or 404."""
    procedure = active_procedures().filter(pk=procedure_id).first()
    if procedure is None:
        raise NotFound("procedure_not_found", _("This procedure is not in the catalogue."))
    return procedure


def active_agencies() -> QuerySet[Agency]:
    return Agency.objects.filter(is_active=True)


def wants_english(language: str | None) -> bool:
    return (language or "").lower().startswith("en")


def pick(vi: str, en: str, language: str | None) -> str:
    """The English text when asked for and present, else the Vietnamese one."""
    return en if wants_english(language) and en else vi
