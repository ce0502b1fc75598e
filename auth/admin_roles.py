"""Who sees what in the admin, and how: the rules every app's admin builds on.

- Superusers see everything, unmasked, and find rows by any part of a stored phone
  number as by a whole number written as people write it (`PhoneSearch`). Each
  citizen's row they open in an audited admin (its page, its delete confirmation or its
  history) is a look-up (`AuditedAccountViews`, the superuser-only admins and the
  support records included), authenticator or not, and so is each job of the queue they
  open whose arguments are personal (`record_job_look_up`), and each search in an
  admin of citizens' rows, never what was typed (`record_superuser_search`: the user
  pages, the superuser-only admins and the others through `AuditedSuperuserSearch`, the
  admins of dossier rows through `dossiers.admin_scope`).
- Support staff (the `accounts.support_reset` permission, TOTP on their account and
  an admin session opened with the authenticator code: `require_admin_support_staff`,
  the support API's rule) use the support pages, the records they lead to (resets,
  the audit trail), the user pages and the admins that serve their duties. There they
  see identities masked (`MaskedFieldsAdmin`, which filters by no masked field from the
  URL either), find a citizen by phone only with the whole number, which is an audited
  look-up (`SupportPhoneSearch`, the support look-up itself), and each account, reset
  or audit record they open is an audited look-up of its citizen (`AuditedAccountViews`).
  The user pages and the admins that serve their duties (`SupportReadOnlyAdmin`:
  payments, notifications, bookings, citizen ID conflicts) open to the support
  permission alone, without the models' "view" permissions, and only read-only; so do
  the support records (`auth.admin.SupportOnlyAdmin`, read-only for everyone).
- Agency officers see the rows of the dossiers they handle (`dossiers.access.officer_rows`;
  `dossiers.admin_scope` for the apps above dossiers), and find them by phone only with
  the whole number (`PhoneSearch`; no look-up record, their rows only).
- Admins that no support or officer duty needs and that hold personal data (device
  sessions with their IP addresses, national identities, organisations, memberships,
  invitations) or every agency's payments (reconciliation reports) are for superusers
  only (`SuperuserOnlyAdmin`), each row opened there a look-up of the accounts it
  shows (`account_paths`; none for a row that names no citizen).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from auth import access
from auth.actions import support
from auth.admin_login import admin_sign_in
from auth.models import User
from auth.personal_numbers import whole_personal_number
from auth.phone import parse_phone
from backend.errors import ApiError, NotFound
from backend.middleware import client_ip

REFUSAL_TEMPLATE = "admin/accounts/support_refused.html"
# Fields searched by phone or citizen ID: support staff never search them by fragment.
IDENTITY_FIELDS = frozenset({"phone", "citizen_id"})
# Set on the request while a support search runs over the other fields.
_WITHOUT_IDENTITY_FIELDS = "_admin_search_without_identity_fields"


def is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


def support_context(request: HttpRequest) -> support.Context:
    return support.Context(channel="admin", ip=client_ip(request))


def refusal(request: HttpRequest, exc: ApiError) -> HttpResponse:
    """A 403 page in the admin's look that says why and what to do."""
    context = {
        **admin.site.each_context(request),
        "title": _("Support functions are not available to you"),
        "message": exc.message,
        "code": exc.code,
    }
    return TemplateResponse(request, REFUSAL_TEMPLATE, context, status=403)


def require_admin_support_staff(request: HttpRequest) -> User:
    """Support staff with TOTP, in an admin session opened recently with their TOTP code."""
    staff: User = request.user  # type: ignore[assignment]
    factor, signed_in_at = admin_sign_in(request)
    access.require_support_sign_in(staff, factor=factor, signed_in_at=signed_in_at)
    return staff


def support_refusal(request: HttpRequest) -> HttpResponse | None:
    """The refusal page unless the signed-in user may use the support pages."""
    try:
        require_admin_support_staff(request)
    except ApiError as exc:
        return refusal(request, exc)
    return None


def is_admin_support_staff(request: HttpRequest) -> bool:
    """Whether the signed-in user may use the support pages now (see the module doc)."""
    try:
        require_admin_support_staff(request)
    except ApiError:
        return False
    return True


def reads_as_support(request: HttpRequest) -> bool:
    """Support staff in a support session who are not superusers (superusers see
    everything as superusers); asked many times per page, answered once."""
    cached = request.__dict__.get("_admin_reads_as_support")
    if cached is None:
        cached = not is_superuser(request) and is_admin_support_staff(request)
        request.__dict__["_admin_reads_as_support"] = cached
    return bool(cached)


class MaskedFieldsAdmin(admin.ModelAdmin):
    """Staff other than superusers see `masked_fields` values (field -> a read-only
    display of it, e.g. "citizen_id" -> "masked_citizen_id"), never the field itself;
    superusers see the field and not its masked twin. An admin whose duty needs the
    field whole for some staff (officers shipping a parcel) says so in `masks_fields`."""

    masked_fields: dict[str, str] = {}

    def masks_fields(self, request: HttpRequest) -> bool:
        return not is_superuser(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields + tuple(name for name in self.masked_fields.values() if name not in fields)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # Django's admin takes from the URL a filter on any field of the row itself
        # (`?citizen_id__startswith=0792`): on a field shown masked, the rows each answer
        # lists would tell its value a character at a time, and no look-up is recorded.
        # Refused (400) to whoever sees it masked, as the job list's are (backend.job_admin).
        masked = request is None or self.masks_fields(request)
        if masked and lookup.split(LOOKUP_SEP)[0] in self.masked_fields:
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        masks = self.masked_fields
        if not self.masks_fields(request):
            twins = set(masks.values())
            return [name for name in fields if not (isinstance(name, str) and name in twins)]
        shown: list[Any] = []
        for field in fields:
            name = masks.get(field, field) if isinstance(field, str) else field
            if name not in shown:
                shown.append(name)
        return shown


def _follow(obj: Any, path: str) -> Any:
    """The object at `path` ("notification__user") from `obj`; None on the way stops."""
    for name in path.split("__") if path else ():
        if obj is None:
            return None
        obj = getattr(obj, name)
    return obj


class AuditedAccountViews(admin.ModelAdmin):
    """Opening a row is an audited support look-up of the accounts it shows
    (`support.record_account_view`), for whom `audits_views` says so: its page, its
    delete confirmation (the rows a deletion would take with it) and its history (the
    changes made to it) alike, one record per page shown.

    `account_paths`: from the row to each account ("" is the row itself, a User);
    `audit_by`: what the record says the account was found by.
    """

    account_paths: tuple[str, ...] = ("",)
    audit_by = "id"

    def audits_views(self, request: HttpRequest) -> bool:
        # Superusers, authenticator or not: they see everything, unmasked.
        return is_superuser(request) or is_admin_support_staff(request)

    def shows_row(self, request: HttpRequest, obj: Any, page: str = "change") -> bool:
        """Whether this request's `page` ("change", "delete" or "history") shows `obj`:
        what Django refuses (403) shows nothing, so it is no look-up; nor is a post of the
        change page without the change permission."""
        if page == "delete":
            return self.has_delete_permission(request, obj)
        if request.method == "POST" and page == "change":
            return self.has_change_permission(request, obj)
        return self.has_view_or_change_permission(request, obj)

    def audited_accounts(self, obj: Any) -> list[User]:
        found: list[User] = []
        for path in self.account_paths:
            account = _follow(obj, path)
            if isinstance(account, User) and account not in found:
                found.append(account)
        return found

    def accounts_shown(self, request: HttpRequest, object_id: str, page: str) -> list[User]:
        """The accounts `page` of the row shows, to be recorded (none where this request
        is not audited, the row is not found or the page is refused)."""
        if not self.audits_views(request):
            return []
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.shows_row(request, obj, page):
            return []
        return self.audited_accounts(obj)

    def record_views(self, request: HttpRequest, accounts: Iterable[User]) -> None:
        staff: User = request.user  # type: ignore[assignment]
        for account in accounts:
            support.record_account_view(
                staff, account, context=support_context(request), by=self.audit_by
            )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        self.record_views(request, self.accounts_shown(request, object_id, "change"))
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        self.record_views(request, self.accounts_shown(request, object_id, "history"))
        return super().history_view(request, object_id, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        # Read before: a deletion takes the row, and the way to its accounts, away.
        accounts = self.accounts_shown(request, object_id, "delete")
        response = super().delete_view(request, object_id, extra_context)
        # The confirmation page (Django shows it to a post too, an empty one or one of a
        # row that protected rows hold), not a deletion done (a redirect, or a popup's
        # answer): the look-up is the page that lists what a deletion would take.
        if "deleted_objects" in (getattr(response, "context_data", None) or {}):
            self.record_views(request, accounts)
        return response


def _search_field_name(name: str) -> str:
    """A search field's path without Django's lookup prefix ("=user__phone")."""
    return name.lstrip("^=@")


class PhoneSearch(admin.ModelAdmin):
    """A phone number typed in the search box, in any usual form ("0912 345 678",
    `auth.phone.parse_phone`), finds the rows whose phone is that number: the search
    fields that hold a phone (`…phone`) and, in a `SupportPhoneSearch`, the accounts of
    its `account_paths`. Superusers also find rows by any part of a stored number, as
    by any part of the other fields. Everyone else finds by phone only with the whole
    number, never a part of one (a part would tell, digit by digit, a number the admin
    shows them masked); the other search fields work as usual for them."""

    def phone_paths(self, request: HttpRequest) -> list[str]:
        """What a whole number is matched against (paths to a stored E.164 phone)."""
        fields = (_search_field_name(name) for name in super().get_search_fields(request))
        return [name for name in fields if name.split("__")[-1] == "phone"]

    def get_search_fields(self, request: HttpRequest) -> Any:
        fields = super().get_search_fields(request)
        if not request.__dict__.get(_WITHOUT_IDENTITY_FIELDS):
            return fields  # all of them, so the list keeps its search box
        return tuple(
            name
            for name in fields
            if _search_field_name(name).split("__")[-1] not in IDENTITY_FIELDS
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return super().get_search_results(request, queryset, search_term)
        phone = parse_phone(term)
        if is_superuser(request):
            rows, may_have_duplicates = super().get_search_results(request, queryset, search_term)
            if phone is not None and (paths := self.phone_paths(request)):
                rows = rows | queryset.filter(_phone_is(paths, phone))
            return rows, may_have_duplicates
        if phone is not None:
            return self.whole_number_results(request, queryset, phone)
        request.__dict__[_WITHOUT_IDENTITY_FIELDS] = True
        try:
            if not self.get_search_fields(request):
                return queryset.none(), False  # Django would ignore the term: all rows
            return super().get_search_results(request, queryset, search_term)
        finally:
            del request.__dict__[_WITHOUT_IDENTITY_FIELDS]

    def whole_number_results(
        self, request: HttpRequest, queryset: QuerySet[Any], phone: str
    ) -> tuple[QuerySet[Any], bool]:
        """Rows found by `phone` (E.164) for staff other than superusers."""
        paths = self.phone_paths(request)
        return (queryset.filter(_phone_is(paths, phone)) if paths else queryset.none()), False


class AuditedSuperuserSearch(admin.ModelAdmin):
    """A superuser's search here is an audited look-up (`record_superuser_search`):
    for admins of citizens' rows, on top of the search they inherit."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        rows, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # Django ignores a term where there is no search field: no search, no record.
        fields = self.get_search_fields(request)
        if is_superuser(request) and search_term.strip() and fields:
            self.record_search(request, search_term, rows, fields)
        return rows, may_have_duplicates

    def record_search(
        self, request: HttpRequest, term: str, rows: QuerySet[Any], fields: Iterable[str]
    ) -> None:
        """How the search is recorded (an admin finding rows by dossier code records a
        whole code as a look-up of its applicant: `dossiers.admin_scope`)."""
        record_superuser_search(request, term, rows, search_fields=fields)


class SuperuserOnlyAdmin(AuditedAccountViews, AuditedSuperuserSearch, PhoneSearch):
    """Hidden from, and refused to, everyone but superusers, whatever their permissions;
    each search there is audited (`AuditedSuperuserSearch`), and each row opened is a
    look-up of the accounts it shows (`AuditedAccountViews`): each admin names them in
    `account_paths` (or `audited_accounts`), none by default."""

    account_paths: tuple[str, ...] = ()

    def audits_views(self, request: HttpRequest) -> bool:
        return is_superuser(request)  # nobody else opens a row here

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_delete_permission(request, obj)


class SupportPhoneSearch(PhoneSearch):
    """Support staff search accounts by phone as the support look-up does: with the
    whole number only, each search an audited look-up (`support.look_up_account`,
    which records how and whether an account was found, never the number typed).
    A fragment of a number finds nothing; other search fields work as usual. Searches
    by citizen ID go through the support look-up page. `account_paths` leads from a
    row to the accounts a number may belong to ("" is the row itself, a User); other
    staff (officers, within their rows) and superusers find rows by those accounts'
    whole numbers too, without a look-up (`PhoneSearch`)."""

    account_paths: tuple[str, ...] = ("",)

    def searches_as_support(self, request: HttpRequest) -> bool:
        return not is_superuser(request) and is_admin_support_staff(request)

    def phone_paths(self, request: HttpRequest) -> list[str]:
        paths = super().phone_paths(request)
        for path in self.account_paths:
            phone = f"{path}__phone" if path else "phone"
            if phone not in paths:
                paths.append(phone)
        return paths

    def whole_number_results(
        self, request: HttpRequest, queryset: QuerySet[Any], phone: str
    ) -> tuple[QuerySet[Any], bool]:
        if not self.searches_as_support(request):
            return super().whole_number_results(request, queryset, phone)
        subject = _looked_up(request, phone)
        if subject is None:
            return queryset.none(), False
        return queryset.filter(_any_of(self.account_paths, subject)), False


class _SupportReadOnlyInline(admin.options.InlineModelAdmin):
    """An inline as support staff see it in a `SupportReadOnlyAdmin`: shown, never edited."""

    max_num = 0

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@cache
def _read_only_inline(inline: type[admin.options.InlineModelAdmin]) -> type[Any]:
    return type(f"SupportReadOnly{inline.__name__}", (_SupportReadOnlyInline, inline), {})


class SupportReadOnlyAdmin(SupportPhoneSearch, AuditedAccountViews, MaskedFieldsAdmin):
    """An admin that serves support staff's duties. Support staff (`reads_as_support`)
    see it with the support permission alone, the models' "view" permissions or not,
    and only read-only: no add, change or delete whatever their permissions (actions
    keep their own permission checks), inlines shown and never edited. They see the
    `masked_fields` masked, each row they open is an audited look-up of its citizen
    (`account_paths`), and they find rows by phone only with the whole number.
    Everyone else keeps the rights their permissions give."""

    def reads_as_support(self, request: HttpRequest) -> bool:
        return reads_as_support(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.reads_as_support(request) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.reads_as_support(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not self.reads_as_support(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.reads_as_support(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.reads_as_support(request) and super().has_delete_permission(request, obj)

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> Any:
        if not self.reads_as_support(request):
            return super().get_inline_instances(request, obj)
        # Django would drop an inline whose model support holds no "view" permission on.
        return [
            _read_only_inline(inline)(self.model, self.admin_site)
            for inline in self.get_inlines(request, obj)
        ]

    def searches_as_support(self, request: HttpRequest) -> bool:
        return self.reads_as_support(request)

    def audits_views(self, request: HttpRequest) -> bool:
        # Superusers too: they see every row, unmasked.
        return self.reads_as_support(request) or is_superuser(request)


def _phone_is(paths: Iterable[str], phone: str) -> Q:
    condition = Q()
    for path in paths:
        condition |= Q(**{path: phone})
    return condition


def _any_of(paths: Iterable[str], subject: User) -> Q:
    condition = Q()
    for path in paths:
        condition |= Q(**{path or "pk": subject.pk})
    return condition


def _matches_citizen_ids(search_fields: Iterable[str]) -> bool:
    """Whether an admin's search fields hold a citizen ID (`…citizen_id`)."""
    return any(_search_field_name(name).split("__")[-1] == "citizen_id" for name in search_fields)


def record_superuser_search(
    request: HttpRequest, term: str, rows: QuerySet[Any], *, search_fields: Iterable[str]
) -> None:
    """A superuser's search in an admin of citizens' rows (`search_fields`: the fields it
    searched), recorded once per request and term, never the term: a whole phone number
    as a look-up of its account (found or not), so too a whole citizen ID number (12
    digits) where the admin matches citizen IDs (`auth.personal_numbers` tells which a
    term is, as for a job's arguments), anything else (a part of a number, a
    name, an order reference) as a search, with whether it found rows."""
    done: set[str] = request.__dict__.setdefault("_admin_superuser_searches", set())
    if term in done:
        return
    done.add(term)
    staff: User = request.user  # type: ignore[assignment]
    number = whole_personal_number(term)
    if number is not None and (number.kind == "phone" or _matches_citizen_ids(search_fields)):
        account = User.objects.filter(number.held_by()).first()
        support.record_look_up(staff, account, context=support_context(request), by=number.kind)
    else:
        support.record_look_up(
            staff, None, context=support_context(request), by="search", found=rows.exists()
        )


def record_job_look_up(request: HttpRequest, personal: dict[str, Any]) -> None:
    """A superuser opened a job of the queue whose personal arguments (`personal`, by
    name) they read whole (`backend.job_admin`, through `settings.JOB_ADMIN_LOOK_UP`): a
    look-up of the account of each whole phone number or citizen ID among them, as a
    search by it is (`record_superuser_search`); of nobody found where none is an
    account's (a number no account holds any more, a text). Never the values."""
    numbers = {n for value in personal.values() if (n := whole_personal_number(value))}
    holds_one = Q()
    for number in numbers:
        holds_one |= number.held_by()
    accounts = list(User.objects.filter(holds_one).order_by("pk")) if numbers else []
    staff: User = request.user  # type: ignore[assignment]
    for account in accounts:
        support.record_account_view(staff, account, context=support_context(request), by="job")
    if not accounts:
        support.record_look_up(staff, None, context=support_context(request), by="job", found=False)


def _looked_up(request: HttpRequest, phone: str) -> User | None:
    """The account of `phone`, looked up once per request (a list page reads its
    queryset more than once, e.g. for its filters' counts)."""
    done: dict[str, User | None] = request.__dict__.setdefault("_admin_phone_lookups", {})
    if phone not in done:
        staff: User = request.user  # type: ignore[assignment]
        try:
            done[phone] = support.look_up_account(
                staff, phone=phone, context=support_context(request)
            )
        except NotFound:
            done[phone] = None
    return done[phone]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only an app's actions write (the event, the audit trail and the rules go
    with them): shown, never added, changed or deleted in the admin, superusers
    included, where no action would run."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
