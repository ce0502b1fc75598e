"""Which rows the admins of the apps above dossiers show, and to whom.

- Superusers: every row.
- Agency officers: the rows of the dossiers they handle (`dossiers.access.officer_rows`),
  with the rights their permissions give.
- Support staff who handle no agency, in a support session (`auth.admin_roles`): every
  row of the admins that serve their duties ("I paid but the app says unpaid" and
  refunds in payments, "I get no notifications" and test pushes in notifications,
  "where is my parcel" in postal bookings),
  on the support permission alone (`SupportReadOnlyAdmin`), read-only, masked like
  everywhere else; each row they open is an audited look-up of the citizen it belongs
  to, and they find a citizen's rows by phone only with the whole number (an audited
  look-up too). Actions keep their own permission checks.
- Other staff: nothing.

An officer who also holds the support permission stays an officer here: their agency's
rows, with the rights their permissions give.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from auth.admin_roles import SupportReadOnlyAdmin, reads_as_support
from auth.models import User
from dossiers.access import officer_rows
from dossiers.models import AgencyOfficer


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
