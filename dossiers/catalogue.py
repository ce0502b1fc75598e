"""The procedure catalogue: search text without diacritics, lookups, localised texts.

Citizens type "khai sinh" or "khai sinh" with its marks, "dang ky" or "Đăng ký":
both the stored `Procedure.search_text` and the query go through `backend.text.fold`,
so a plain substring match finds either spelling. `search_text` is written by
the catalogue loader and the admin (`refresh_search_text`), never by `save()`.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest
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


def request_language(request: HttpRequest) -> str:
    """The language LocaleMiddleware chose from Accept-Language (vi by default)."""
    return str(getattr(request, "LANGUAGE_CODE", settings.LANGUAGE_CODE))


def wants_english(language: str | None) -> bool:
    return (language or "").lower().startswith("en")


def pick(vi: str, en: str, language: str | None) -> str:
    """The English text when asked for and present, else the Vietnamese one."""
    return en if wants_english(language) and en else vi
