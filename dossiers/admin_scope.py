"""Which rows the admins of the apps above dossiers show, and to whom.

- Superusers: every row; each one they open is an audited look-up of its citizen, as
  for support staff, and each search a look-up too, never what was typed (a whole
  phone number of its account, a whole dossier code of its applicant, anything else
  a search, with whether it found rows).
- Agency officers: the rows of the dossiers they handle (`dossiers.access.officer_rows`),
  with the rights their permissions give; a phone number finds their rows only written
  in full (`auth.admin_roles.PhoneSearch`), never by a part of it.
- Support staff who handle no agency, in a support session (`auth.admin_roles`): every
  row of the admins that serve their duties ("I paid but the app says unpaid" and
  refunds in payments, "I get no notifications" and test pushes in notifications,
  "where is my parcel" in postal bookings),
  on the support permission alone (`SupportReadOnlyAdmin`), read-only, masked like
  everywhere else; each row they open is an audited look-up of the citizen it belongs
  to, and they find a citizen's rows by phone only with the whole number (an audited
  look-up too). Actions keep their own permission checks.
- Where an admin finds rows by dossier code (`searches_by_dossier_code`: payments,
  notifications and their deliveries, postal bookings), staff other than superusers
  find them only with the whole code, never a part of one: for support staff an
  audited look-up of the dossier's applicant (the record keeps whether a dossier was
  found, never the code), for officers within their rows. A search field whose values
  carry the code (`whole_value_search_fields`: a booking's order number) finds for
  them only by its whole value, so a part of a code finds nothing there either.
  Superusers find rows by any part of either.
- Other staff: nothing.

An officer who also holds the support permission stays an officer here: their agency's
rows, with the rights their permissions give.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from auth.actions import support
from auth.admin_roles import (
    SupportReadOnlyAdmin,
    is_superuser,
    reads_as_support,
    record_superuser_search,
    support_context,
)
from auth.models import User
from dossiers.access import officer_rows
from dossiers.models import AgencyOfficer, Dossier

# What `dossiers.actions.next_dossier_code` makes: {agency code}-{yyMMdd}-{NNNN}.
_DOSSIER_CODE = re.compile(r"\S+-\d{6}-\d{4,}")


def parse_dossier_code(text: str) -> str | None:
    """`text` as a whole dossier code (as the public look-up reads one), else None."""
    code = text.strip().upper()
    return code if _DOSSIER_CODE.fullmatch(code) else None


def support_view(request: HttpRequest) -> bool:
    """Support staff in a support session who are neither superusers nor officers."""
    cached = request.__dict__.get("_admin_support_view")
    if cached is None:
        user: User = request.user  # type: ignore[assignment]
        cached = (
            reads_as_support(request) and not AgencyOfficer.objects.filter(user_id=user.pk).exists()
        )
        request.__dict__["_admin_support_view"] = cached
    return bool(cached)


class OfficerOrSupportAdmin(SupportReadOnlyAdmin):
    """An admin of rows that belong to dossiers: `dossier_path` leads from a row to its
    dossier (officers), `account_paths` to the citizen's account (support's audit and
    phone search)."""

    dossier_path = "dossier"

    def reads_as_support(self, request: HttpRequest) -> bool:
        return support_view(request)

    def officer_queryset(self, request: HttpRequest, rows: QuerySet[Any]) -> QuerySet[Any]:
        user: User = request.user  # type: ignore[assignment]
        return officer_rows(user, rows, self.dossier_path)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = super().get_queryset(request)
        return rows if support_view(request) else self.officer_queryset(request, rows)

    # A search term that is a whole dossier code finds that dossier's rows. Never list
    # the dossier's code in `search_fields`: that would find rows by a part of it.
    searches_by_dossier_code = False
    # Search fields whose values carry the dossier code (a booking's order number is the
    # code and a number): staff other than superusers match them whole only.
    whole_value_search_fields: tuple[str, ...] = ()

    def get_search_fields(self, request: HttpRequest) -> Any:
        fields = tuple(super().get_search_fields(request))
        if is_superuser(request):
            if self.searches_by_dossier_code:
                return (*fields, f"{self.dossier_path}__code")  # any part of a code
            return fields
        # Django's "=" prefix: the whole value (case aside), not a part of it.
        whole = self.whole_value_search_fields
        return tuple(f"={name}" if name in whole else name for name in fields)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        fields = self.get_search_fields(request)
        if is_superuser(request) and search_term.strip() and fields:
            rows, may_have_duplicates = super().get_search_results(request, queryset, search_term)
            if self.searches_by_dossier_code:
                record_superuser_dossier_search(request, search_term, rows, search_fields=fields)
            else:
                record_superuser_search(request, search_term, rows, search_fields=fields)
            return rows, may_have_duplicates
        code = None
        if self.searches_by_dossier_code and not is_superuser(request):
            code = parse_dossier_code(search_term)
        if code is None:
            return super().get_search_results(request, queryset, search_term)
        if support_view(request) and _dossier_looked_up(request, code) is None:
            return queryset.none(), False
        # Officers: within their rows (the queryset), so another agency's code finds none.
        return queryset.filter(**{f"{self.dossier_path}__code": code}), False


def record_superuser_dossier_search(
    request: HttpRequest, term: str, rows: QuerySet[Any], *, search_fields: Iterable[str]
) -> None:
    """A superuser's search in an admin that finds rows by dossier code: a whole code is
    a look-up of its dossier's applicant (never the code), anything else is recorded as
    `auth.admin_roles.record_superuser_search` records it (`search_fields`: the fields
    the admin searched)."""
    code = parse_dossier_code(term)
    if code is not None:
        _dossier_looked_up(request, code)
    else:
        record_superuser_search(request, term, rows, search_fields=search_fields)


def _dossier_looked_up(request: HttpRequest, code: str) -> Dossier | None:
    """The dossier of `code`, looked up once per request as an audited look-up of its
    applicant (a list page reads its queryset more than once)."""
    done: dict[str, Dossier | None] = request.__dict__.setdefault("_admin_code_lookups", {})
    if code not in done:
        dossier = Dossier.objects.select_related("applicant").filter(code=code).first()
        staff: User = request.user  # type: ignore[assignment]
        support.record_look_up(
            staff,
            dossier.applicant if dossier is not None else None,
            context=support_context(request),
            by="dossier_code",
        )
        done[code] = dossier
    return done[code]
