"""Django admin: users, organisations, memberships, sessions, and the support flow.

The support pages (look-up, open a reset, approve or reject one) call the same
actions as the support console API (auth.actions.support), so the same rules hold:
support permission, TOTP on the staff account, proofing evidence, a second
approver for level-2 accounts, no self-approval, no self-reset, and an audit
record for every step. The audit trail is read-only here and in the database.
Staff sign in with their password and, once they have it, their authenticator
code (auth.admin_login); support pages refuse staff without TOTP with a page
that says what to do; the resets and the audit trail open to them on the support
permission alone, as in the API, each reset or record opened an audited look-up of its
citizen, and so is the page that opens a reset for an account. The user pages list and
show citizens, so for everyone but superusers they follow the same rule, show the
masked identity the support console shows, record each account opened as a look-up,
and find an account by phone only with the whole number, as the support look-up does
(audited, never a fragment). They and citizen ID conflicts open to support staff on the support
permission alone, read-only, like the other admins that serve their duties
(`SupportReadOnlyAdmin`). A superuser who changes an account's citizen ID settles the
conflicts it ends (`auth.actions.citizen_id_conflicts`). Organisations, memberships,
invitations, device sessions and national identities are for superusers only, each one
opened an audited look-up of the accounts its page shows. Who sees what, for every
app's admin: auth.admin_roles.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from auth import access, citizen_ids
from auth.actions import citizen_id_conflicts, support
from auth.actions.sessions import end_sign_ins, revoke_session
from auth.admin_roles import (
    AuditedAccountViews,
    AuditedSuperuserSearch,
    MaskedFieldsAdmin,
    ReadOnlyAdmin,
    SuperuserOnlyAdmin,
    SupportPhoneSearch,
    SupportReadOnlyAdmin,
    is_admin_support_staff,
    is_superuser,
    refusal,
    require_admin_support_staff,
    support_context,
    support_refusal,
)
from auth.masked_accounts import masked_account
from auth.models import (
    CitizenIdConflict,
    DeviceSession,
    Invitation,
    Membership,
    NationalIdentity,
    Organisation,
    SupportAuditRecord,
    SupportReset,
    User,
)
from auth.phone import mask_phone
from backend.errors import ApiError

TEMPLATE = "admin/accounts/support_form.html"


def _error_text(exc: ApiError) -> str:
    details = exc.details if isinstance(exc.details, list) else []
    fields = ", ".join(str(d.get("field")) for d in details if isinstance(d, dict))
    return f"{exc.message} ({exc.code}{': ' + fields if fields else ''})"


def _linked_identity(user: User) -> NationalIdentity | None:
    try:
        return user.national_identity  # read with the user where the list selects it
    except NationalIdentity.DoesNotExist:
        return None


def _conflicts_of(user: User, *, masked: bool) -> str:
    """The open citizen ID conflicts `user` is part of, one a line, each a link to its
    page: the number (masked for all but superusers), which side the account is on, how
    the number was claimed, and since when."""
    conflicts = CitizenIdConflict.objects.filter(
        Q(verified_user=user) | Q(declared_by=user), resolved_at=None
    ).order_by("created_at", "pk")
    lines = []
    for conflict in conflicts:
        number = (
            citizen_ids.masked_citizen_id(conflict.citizen_id) if masked else conflict.citizen_id
        )
        text = (
            _("Claims %(number)s, held by another account (%(source)s, since %(since)s)")
            if conflict.verified_user_id == user.pk
            else _("Holds %(number)s, claimed by another account (%(source)s, since %(since)s)")
        )
        lines.append(
            (
                reverse("admin:accounts_citizenidconflict_change", args=[conflict.pk]),
                text
                % {
                    "number": number,
                    "source": conflict.get_source_display(),
                    "since": f"{timezone.localtime(conflict.created_at):%Y-%m-%d %H:%M}",
                },
            )
        )
    if not lines:
        return "—"
    return format_html_join("\n", '<div><a href="{}">{}</a></div>', lines)


class LookupForm(forms.Form):
    phone = forms.CharField(label=_("phone number"), max_length=32, required=False)
    citizen_id = forms.CharField(label=_("citizen ID (CCCD)"), max_length=12, required=False)


class ResetForm(forms.Form):
    kind = forms.ChoiceField(choices=SupportReset.Kind.choices)
    reason = forms.CharField(widget=forms.Textarea, max_length=2000, required=False)
    evidence = forms.CharField(
        widget=forms.Textarea,
        max_length=2000,
        required=False,
        help_text=_('How identity was proven, e.g. "CCCD checked in person at the counter".'),
    )
    ticket_number = forms.CharField(max_length=64, required=False)
    new_phone = forms.CharField(max_length=32, required=False)


class RejectForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea, max_length=2000, required=False)


class CitizenIdConflictFilter(admin.SimpleListFilter):
    """Accounts with an open claim to a citizen ID another account holds, entered in the
    app or asserted by their national identity (never lists numbers)."""

    title = _("citizen ID conflict")
    parameter_name = "citizen_id_conflict"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        claims = CitizenIdConflict.objects.filter(verified_user=OuterRef("pk"), resolved_at=None)
        if self.value() == "yes":
            return queryset.filter(Exists(claims))
        if self.value() == "no":
            return queryset.exclude(Exists(claims))
        return queryset


class CitizenPages(admin.ModelAdmin):
    """Pages that list and show citizens' accounts: staff other than superusers reach
    them only as support staff in a support session (the support pages' rule); anyone
    else gets the refusal page, which says why and what to do."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return self._refusal(request) or super().changelist_view(request, extra_context)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        return self._refusal(request) or super().add_view(request, form_url, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        # Opening an account is an audited look-up (AuditedAccountViews), once allowed.
        return self._refusal(request) or super().change_view(
            request, object_id, form_url, extra_context
        )

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        return self._refusal(request) or super().delete_view(request, object_id, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        return self._refusal(request) or super().history_view(request, object_id, extra_context)

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        return None if is_superuser(request) else support_refusal(request)


@admin.register(User)
class UserAdmin(CitizenPages, AuditedSuperuserSearch, SupportReadOnlyAdmin):
    """Support staff open the user pages on the support permission alone, read-only
    (`SupportReadOnlyAdmin`): a citizen's account changes through the support flow,
    whose actions check and audit each step; superusers edit it here. Each search a
    superuser makes here is an audited look-up too (`AuditedSuperuserSearch`)."""

    list_display = (
        "full_name",
        "masked_phone",
        "verification_level",
        "national_identity_level",
        "is_staff",
        "is_active",
    )
    list_filter = (
        "verification_level",
        "national_identity__level",
        "is_staff",
        "is_active",
        CitizenIdConflictFilter,
    )
    list_select_related = ("national_identity",)
    search_fields = ("phone", "full_name", "citizen_id")
    search_help_text = _(
        "Name, phone number or citizen ID. Superusers: any part of them (a phone number "
        "as stored, +84…, or whole as people write it), each search audited (a whole "
        "phone number or 12-digit citizen ID as a look-up of its account). Support "
        "staff: a name, or a phone number only whole (an audited look-up); a part of a "
        "number finds nothing, a citizen ID only the support look-up does."
    )
    ordering = ("-date_joined",)
    change_list_template = "admin/accounts/user_change_list.html"
    # Secrets are never shown or edited here: not the password hash, not the TOTP secret.
    fields = (
        "full_name",
        "phone",
        "phone_verified_at",
        "verification_level",
        "national_identity_display",
        "citizen_id",
        "citizen_id_conflicts",
        "citizen_id_verified_at",
        "birth_date",
        "language",
        "totp_confirmed_at",
        "must_reset_password",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "date_joined",
        "last_login",
    )
    readonly_fields = (
        "national_identity_display",
        "masked_phone",
        "masked_citizen_id",
        "citizen_id_conflicts",
        "masked_citizen_id_conflicts",
        "masked_birth_date",
        "citizen_id_verified_at",
        "totp_confirmed_at",
        "must_reset_password",
        "date_joined",
        "last_login",
    )
    filter_horizontal = ("groups", "user_permissions")
    # Sign-in factors and privileges change through the support flow (or a superuser).
    guarded_fields = (
        "phone",
        "phone_verified_at",
        "verification_level",
        "citizen_id",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
    )

    # What staff other than superusers see instead: the support console's masking.
    masked_fields = {
        "phone": "masked_phone",
        "citizen_id": "masked_citizen_id",
        "citizen_id_conflicts": "masked_citizen_id_conflicts",
        "birth_date": "masked_birth_date",
    }

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if is_superuser(request):
            return fields
        return fields + self.guarded_fields

    def audits_views(self, request: HttpRequest) -> bool:
        # Superusers with TOTP too (SupportReadOnlyAdmin audits support staff only).
        return AuditedAccountViews.audits_views(self, request)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "citizen_id" in form.changed_data:
            # A superuser corrected a number: the conflicts it settles are settled.
            citizen_id_conflicts.settle(obj)
        if change and "phone" in form.changed_data:
            # As a phone change in the app: the old number's codes and devices prove
            # nothing any more (every session and sign-in in progress ends).
            end_sign_ins(obj, reason="phone_changed")

    @admin.display(description=_("phone number"))
    def masked_phone(self, obj: User) -> str:
        return mask_phone(obj.phone)

    @admin.display(description=_("citizen ID (CCCD)"))
    def masked_citizen_id(self, obj: User) -> str:
        return citizen_ids.masked_citizen_id(obj.citizen_id) or "—"

    @admin.display(description=_("open citizen ID conflicts"))
    def citizen_id_conflicts(self, obj: User) -> str:
        return _conflicts_of(obj, masked=False)

    @admin.display(description=_("open citizen ID conflicts"))
    def masked_citizen_id_conflicts(self, obj: User) -> str:
        return _conflicts_of(obj, masked=True)

    @admin.display(description=_("birth date"))
    def masked_birth_date(self, obj: User) -> str:
        # The support console shows no birth date; whether one is recorded is enough.
        return "••/••/••••" if obj.birth_date else "—"

    @admin.display(description=_("VNeID level"), ordering="national_identity__level")
    def national_identity_level(self, obj: User) -> str:
        identity = _linked_identity(obj)
        return str(_("Level %(level)s") % {"level": identity.level}) if identity else "—"

    @admin.display(description=_("national identity (VNeID)"))
    def national_identity_display(self, obj: User) -> str:
        identity = _linked_identity(obj)
        if identity is None:
            return str(_("Not linked"))
        return str(
            _("Linked, level %(level)s (since %(linked)s, last sign-in %(last)s)")
            % {
                "level": identity.level,
                "linked": f"{identity.linked_at:%Y-%m-%d %H:%M}",
                "last": f"{identity.last_sign_in_at:%Y-%m-%d %H:%M}",
            }
        )

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("support-lookup/", view(self.lookup_view), name="accounts_support_lookup"),
            path(
                "<uuid:user_id>/support-reset/",
                view(self.open_reset_view),
                name="accounts_support_reset",
            ),
            *super().get_urls(),
        ]

    def lookup_view(self, request: HttpRequest) -> HttpResponse:
        try:
            staff = require_admin_support_staff(request)
        except ApiError as exc:
            return refusal(request, exc)
        form = LookupForm(request.POST or None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": _("Support: look up an account"),
            "form": form,
            "buttons": [("lookup", _("Look up"))],
        }
        if request.method == "POST" and form.is_valid():
            try:
                subject = support.look_up_account(
                    staff,
                    phone=form.cleaned_data["phone"] or None,
                    citizen_id=form.cleaned_data["citizen_id"] or None,
                    context=support_context(request),
                )
            except ApiError as exc:
                context["error"] = _error_text(exc)
            else:
                context["account"] = masked_account(subject)
                context["reset_url"] = reverse("admin:accounts_support_reset", args=[subject.pk])
        return TemplateResponse(request, TEMPLATE, context)

    def open_reset_view(self, request: HttpRequest, user_id: Any) -> HttpResponse:
        try:
            staff = require_admin_support_staff(request)
            subject = access.access_support_subject(staff, user_id)
        except ApiError as exc:
            if exc.status == 404:
                raise Http404 from exc
            return refusal(request, exc)
        form = ResetForm(request.POST or None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": _("Support: reset an account"),
            "account": masked_account(subject),
            "form": form,
            "buttons": [("open", _("Open the reset"))],
        }
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                reset = support.open_reset(
                    staff,
                    subject,
                    kind=data["kind"],
                    reason=data["reason"],
                    evidence=data["evidence"],
                    ticket_number=data["ticket_number"],
                    new_phone=data["new_phone"] or None,
                    context=support_context(request),
                )
            except ApiError as exc:
                if exc.status == 403:
                    return refusal(request, exc)
                context["error"] = _error_text(exc)
            else:
                if reset.requires_approval:
                    self.message_user(
                        request, _("Reset opened: a second staff member must approve it.")
                    )
                else:
                    self.message_user(request, _("The account was reset."), messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:accounts_supportreset_change", args=[reset.pk])
                )
        # The form shows the account (again after a reset refused): a look-up of it, as
        # its change page is. A reset opened is recorded as what it is.
        self.record_views(request, [subject])
        return TemplateResponse(request, TEMPLATE, context)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


# Organisations, their members and invitations, device sessions (with their IP
# addresses) and national identities (with their subject ids) serve no support or
# officer duty here: support resets revoke sessions and show their count, the user
# pages show the identity level. Superusers only; each row a superuser opens is an
# audited look-up of the accounts its page shows (`SuperuserOnlyAdmin`).


@admin.register(Organisation)
class OrganisationAdmin(SuperuserOnlyAdmin):
    list_display = ("name", "tax_code", "verified_at", "created_at")
    list_filter = (("verified_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "tax_code")
    search_help_text = _("Any part of the name or the tax code. Each search is audited.")
    readonly_fields = ("verified_at", "registry_name")
    inlines = (MembershipInline,)
    audit_by = "organisation"

    def audited_accounts(self, obj: Organisation) -> list[User]:
        # An organisation is a business (its tax code, name and address are no
        # citizen's), not a citizen: no owner or representative stands for it. What
        # its page shows of citizens is its members, every one by name (the inline):
        # opening it is a look-up of each of them; with no member, of nobody.
        return [member.user for member in obj.memberships.select_related("user").order_by("pk")]


@admin.register(Membership)
class MembershipAdmin(SuperuserOnlyAdmin):
    list_display = ("organisation", "user", "role", "watches", "created_at")
    list_filter = ("role", "watches")
    search_fields = ("organisation__name", "organisation__tax_code", "user__phone")
    search_help_text = _(
        "Any part of the organisation's name or tax code or of the member's phone number "
        "(+84…), a whole number also as people write it (0912 345 678). Each search is "
        "audited."
    )
    raw_id_fields = ("organisation", "user")
    account_paths = ("user",)  # the member; the organisation's other members not shown
    audit_by = "membership"


@admin.register(Invitation)
class InvitationAdmin(SuperuserOnlyAdmin):
    list_display = ("organisation", "phone", "role", "status", "created_at", "expires_at")
    list_filter = ("status", "role")
    search_fields = ("organisation__name", "phone")
    search_help_text = _(
        "Any part of the organisation's name or of the invited phone number (+84…), a "
        "whole number also as people write it (0912 345 678). Each search is audited."
    )
    raw_id_fields = ("organisation", "invited_by", "responded_by")
    account_paths = ("invited_by", "responded_by")
    audit_by = "invitation"

    def audited_accounts(self, obj: Invitation) -> list[User]:
        # The inviter and whoever answered, by name, and the invited number, whole: its
        # account (if one holds it) is looked up too, as a search by the number is.
        found = super().audited_accounts(obj)
        holder = User.objects.filter(phone=obj.phone).first()
        if holder is not None and holder not in found:
            found.append(holder)
        return found


@admin.register(DeviceSession)
class DeviceSessionAdmin(SuperuserOnlyAdmin):
    list_display = ("user", "name", "platform", "app_version", "last_seen_at", "revoked_at")
    list_filter = ("platform", "revoked_reason")
    search_fields = ("user__phone", "name")
    search_help_text = _(
        "Any part of the account's phone number (+84…) or of the device's name, a whole "
        "number also as people write it (0912 345 678). Each search is audited."
    )
    actions = ("revoke_sessions",)
    account_paths = ("user",)
    audit_by = "device_session"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        # The rows are never edited here, but revoking is a change: "view" is not enough.
        return is_superuser(request) and request.user.has_perm("accounts.change_devicesession")

    @admin.action(description=_("Revoke the selected sessions"), permissions=["revoke"])
    def revoke_sessions(self, request: HttpRequest, queryset: QuerySet[DeviceSession]) -> None:
        if not self.has_revoke_permission(request):
            raise DjangoPermissionDenied
        for session in queryset:
            revoke_session(session, reason="admin")
        self.message_user(request, _("Sessions revoked."))


class SupportOnlyAdmin(ReadOnlyAdmin):
    """Support records: shown only to support staff in a support session, superusers
    included (as in the support console's API), and to them on the support permission
    alone: the API reads them on it, and the support pages lead to them (an opened
    reset, its decision). Read-only for everyone."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_admin_support_staff(request) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_admin_support_staff(request) or super().has_view_permission(request, obj)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return support_refusal(request) or super().changelist_view(request, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        return support_refusal(request) or super().change_view(
            request, object_id, form_url, extra_context
        )

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        return support_refusal(request) or super().history_view(request, object_id, extra_context)


@admin.register(SupportReset)
class SupportResetAdmin(
    SupportOnlyAdmin, AuditedAccountViews, AuditedSuperuserSearch, SupportPhoneSearch
):
    """A reset shows its citizen (the account, the reason, the evidence of identity):
    each one opened, its page, its history or its decision page, is an audited look-up
    of that account (`AuditedAccountViews`), as opening the account itself is."""

    list_display = ("user", "kind", "status", "requires_approval", "opened_by", "opened_at")
    list_filter = ("status", "kind", "requires_approval")
    search_fields = ("user__phone", "ticket_number")
    search_help_text = _(
        "Ticket number or the citizen's phone number. Superusers: any part of either, each "
        "search audited. Other staff: a phone number only whole (an audited look-up); a "
        "part of a number finds nothing."
    )
    account_paths = ("user",)
    audit_by = "support_reset"
    exclude = ("new_phone",)
    change_form_template = "admin/accounts/supportreset_change_form.html"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "<uuid:reset_id>/decide/",
                view(self.decide_view),
                name="accounts_supportreset_decide",
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request: HttpRequest, reset_id: Any) -> HttpResponse:
        try:
            staff = require_admin_support_staff(request)
            reset = access.access_reset(staff, reset_id)
        except ApiError as exc:
            if exc.status == 404:
                raise Http404 from exc
            return refusal(request, exc)
        form = RejectForm(request.POST or None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": _("Support: decide on a reset"),
            "reset": reset,
            "account": masked_account(reset.user),
            "form": form,
            "buttons": [("approve", _("Approve and apply")), ("reject", _("Reject"))],
        }
        if request.method == "POST" and form.is_valid():
            try:
                if "approve" in request.POST:
                    support.approve_reset(staff, reset.pk, context=support_context(request))
                    self.message_user(request, _("Approved: the account was reset."))
                else:
                    support.reject_reset(
                        staff,
                        reset.pk,
                        note=form.cleaned_data["note"],
                        context=support_context(request),
                    )
                    self.message_user(request, _("Reset rejected."))
            except ApiError as exc:
                if exc.status == 403:
                    return refusal(request, exc)
                context["error"] = _error_text(exc)
            else:
                return HttpResponseRedirect(
                    reverse("admin:accounts_supportreset_change", args=[reset.pk])
                )
        # The page shown (again after a decision refused): a look-up of its citizen. A
        # decision taken is recorded as what it is.
        self.record_views(request, self.audited_accounts(reset))
        return TemplateResponse(request, TEMPLATE, context)


@admin.register(SupportAuditRecord)
class SupportAuditRecordAdmin(
    SupportOnlyAdmin,
    AuditedAccountViews,
    AuditedSuperuserSearch,
    SupportPhoneSearch,
    MaskedFieldsAdmin,
):
    """A record shows what was done to or looked up of its subject (and a reset's
    evidence): each one opened is an audited look-up of its subject, the citizen, never
    of its actor or approver (staff, `audited_accounts`). Reading the trail adds to it,
    one record per page a person opens: the record written is never itself opened by
    writing it, so nothing loops, and who read a citizen's trail is what the trail is
    for. A record of nobody (a search that found no account) is no look-up."""

    list_display = ("created_at", "action", "actor", "subject", "approver", "channel")
    list_filter = ("action", "channel")
    search_fields = ("subject__phone", "actor__phone")
    search_help_text = _(
        "The citizen's or the staff member's phone number. Superusers: any part of it, "
        "each search audited. Other staff: only the whole number (an audited look-up); a "
        "part of a number finds nothing."
    )
    account_paths = ("subject", "actor")  # a number finds the records of either
    audit_by = "audit_record"
    date_hierarchy = "created_at"
    masked_fields = {"ip": "masked_ip"}

    def audited_accounts(self, obj: SupportAuditRecord) -> list[User]:
        return [obj.subject] if obj.subject is not None else []

    @admin.display(description=_("IP address"))
    def masked_ip(self, obj: SupportAuditRecord) -> str:
        # Whether one was recorded is enough; superusers see it.
        return "•••" if obj.ip else "—"


@admin.register(NationalIdentity)
class NationalIdentityAdmin(SuperuserOnlyAdmin, ReadOnlyAdmin):
    """Links are made and removed by the national sign-in actions only."""

    list_display = ("user", "level", "linked_at", "last_sign_in_at")
    list_filter = ("level",)
    search_fields = ("user__phone", "user__full_name")
    search_help_text = _(
        "Any part of the account's phone number (+84…) or name, a whole number also as "
        "people write it (0912 345 678). Each search is audited."
    )
    list_select_related = ("user",)
    account_paths = ("user",)
    audit_by = "national_identity"


@admin.register(CitizenIdConflict)
class CitizenIdConflictAdmin(CitizenPages, SupportReadOnlyAdmin, ReadOnlyAdmin):
    """A citizen ID claimed by one account (asserted by its national identity, or entered
    by its citizen in the app) while another account holds it.

    As on the user pages: staff other than superusers only in a support session, the
    number masked for all but superusers, and opening a conflict is an audited look-up
    of both accounts. Support staff need no "view" permission of conflicts: the support
    permission opens them, read-only, as it opens payments, notifications and bookings
    (`SupportReadOnlyAdmin`). Rows are written by the national sign-in and by a citizen
    entering a number in the app (the one record of both: `source`), and settled
    (`resolved_at`) by `auth.actions.citizen_id_conflicts`.
    """

    list_display = ("verified_user", "declared_by", "source", "created_at", "resolved_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "source")
    list_select_related = ("verified_user", "declared_by")
    masked_fields = {"citizen_id": "masked_citizen_id"}
    account_paths = ("verified_user", "declared_by")
    audit_by = "citizen_id_conflict"

    def audits_views(self, request: HttpRequest) -> bool:
        # The user pages' rule, superusers with TOTP included (SupportReadOnlyAdmin
        # audits support staff only).
        return AuditedAccountViews.audits_views(self, request)

    @admin.display(description=_("citizen ID (CCCD)"))
    def masked_citizen_id(self, obj: CitizenIdConflict) -> str:
        return citizen_ids.masked_citizen_id(obj.citizen_id) or "—"
