"""Agency officers in the Django admin: the same lifecycle actions as the signed API.

An officer (staff user with an AgencyOfficer row) sees and moves only their
agencies' dossiers; superusers see all. A dossier shows its citizen's form data: each
one a superuser opens is an audited look-up of its applicant, and so is each of their
searches (never what was typed: a whole code as a look-up of its applicant, anything
else as a search, with whether it found dossiers), as in the admins of dossier rows
(`dossiers.admin_scope`). Officers' reads of their own dossiers are not recorded.
Credentials for back-office systems are created and rotated here, by officers of that
agency with the change permission; the secret is shown once. Every action declares the
permission it needs (Django runs an action without one for anyone who can view the
list) and checks it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from auth.admin_roles import AuditedAccountViews, AuditedSuperuserSearch, is_superuser
from backend.errors import ApiError
from dossiers import lifecycle, monitoring
from dossiers.access import handled_by_officer
from dossiers.admin_scope import record_superuser_dossier_search, support_view
from dossiers.agency.credentials import create_credential, retire_previous_secret, rotate_credential
from dossiers.lifecycle import Actor
from dossiers.models import (
    Agency,
    AgencyCredential,
    AgencyOfficer,
    Apology,
    Dossier,
    SupplementRequest,
)

# Actions with a form page, in the order buttons appear.
FORM_ACTIONS = (
    "accept",
    "refuse",
    "start_processing",
    "request_supplement",
    "request_payment",
    "complete",
    "hand_over",
    "stop",
    "apologise",
)
ACTION_TITLES = {
    "accept": _("Accept (receipt, form 01)"),
    "refuse": _("Refuse at reception (form 03)"),
    "start_processing": _("Start processing"),
    "request_supplement": _("Request a supplement (form 02)"),
    "request_payment": _("Request payment"),
    "complete": pgettext_lazy("dossier action", "Result ready"),
    "hand_over": _("Hand over the result"),
    "stop": _("Stop processing"),
    "apologise": _("Apologise with a new date (form 04)"),
}


class LifecycleActionForm(forms.Form):
    """The fields one action needs, built for that action."""

    def __init__(self, action: str, dossier: Dossier, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.action = action
        text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)
        optional_text = forms.CharField(
            widget=forms.Textarea(attrs={"rows": 3}), max_length=4000, required=False
        )
        if action == "accept":
            self.fields["receipt_number"] = forms.CharField(max_length=100, required=False)
            self.fields["message"] = optional_text
        elif action in ("refuse", "stop"):
            self.fields["reason"] = text
        elif action == "start_processing":
            self.fields["message"] = optional_text
        elif action == "request_supplement":
            self.fields["codes"] = forms.MultipleChoiceField(
                choices=[(doc.code, doc.name) for doc in dossier.procedure.documents.all()],
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label=_("Documents of the procedure"),
            )
            self.fields["other"] = forms.CharField(
                widget=forms.Textarea(attrs={"rows": 3}),
                required=False,
                label=_("Other missing or incorrect papers (one per line)"),
            )
            self.fields["message"] = text
        elif action == "request_payment":
            self.fields["amount"] = forms.IntegerField(min_value=1, label=_("Amount (VND)"))
            self.fields["description"] = optional_text
        elif action == "complete":
            self.fields["message"] = optional_text
            self.fields["result_file"] = forms.FileField(
                required=False, label=_("Electronic result (PDF)")
            )
        elif action == "hand_over":
            self.fields["method"] = forms.ChoiceField(
                choices=[(m, m) for m in lifecycle.HANDOVER_METHODS]
            )
            self.fields["message"] = optional_text
        elif action == "apologise":
            self.fields["new_appointment_at"] = forms.DateTimeField(
                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
            )
            self.fields["reason"] = text

    def perform(self, dossier: Dossier, actor: Actor) -> Dossier:
        data = self.cleaned_data
        pk = dossier.pk
        if self.action == "accept":
            return lifecycle.accept(
                pk, actor, receipt_number=data["receipt_number"], message=data["message"]
            )
        if self.action == "refuse":
            return lifecycle.refuse(pk, actor, reason=data["reason"])
        if self.action == "stop":
            return lifecycle.stop(pk, actor, reason=data["reason"])
        if self.action == "start_processing":
            return lifecycle.start_processing(pk, actor, message=data["message"])
        if self.action == "request_supplement":
            documents = [{"code": code, "note": ""} for code in data["codes"]]
            documents += [
                {"code": "", "note": line.strip()}
                for line in data["other"].splitlines()
                if line.strip()
            ]
            return lifecycle.request_supplement(
                pk, actor, documents=documents, message=data["message"]
            )
        if self.action == "request_payment":
            return lifecycle.request_payment(
                pk, actor, amount=data["amount"], description=data["description"]
            )
        if self.action == "complete":
            upload = data.get("result_file")
            if upload is not None:
                head = upload.read(5)
                upload.seek(0)
                if head != b"%PDF-":
                    raise ApiError("not_a_pdf", _("The result file must be a PDF."), status=422)
            return lifecycle.complete(
                pk,
                actor,
                message=data["message"],
                result_file=upload,
                result_file_name=upload.name if upload else "",
                result_content_type="application/pdf" if upload else "",
            )
        if self.action == "hand_over":
            return lifecycle.hand_over(pk, actor, method=data["method"], message=data["message"])
        if self.action == "apologise":
            moment: dt.datetime = data["new_appointment_at"]
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            return lifecycle.apologise(pk, actor, new_appointment_at=moment, reason=data["reason"])
        raise Http404


class PerformanceForm(forms.Form):
    date_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))
    agency = forms.ModelChoiceField(queryset=Agency.objects.none(), required=False)

    def __init__(
        self, agencies: QuerySet[Agency], everyone: bool, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["agency"]
        if not isinstance(field, forms.ModelChoiceField):
            raise TypeError("the agency field must be a model choice field")
        field.queryset = agencies
        # Officers see their own agencies only; "all agencies" is for superusers.
        field.required = not everyone

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            raise forms.ValidationError(_("The end date is before the start date."))
        return data


class DeadlineFilter(admin.SimpleListFilter):
    title = _("deadline")
    parameter_name = "deadline"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("overdue", _("Overdue")),
            ("violation", _("Overdue without apology")),
            ("at_risk", _("Less than one working day left")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Dossier]) -> QuerySet[Dossier]:
        if self.value() == "overdue":
            return queryset.filter(pk__in=monitoring.overdue(queryset).values("pk"))
        if self.value() == "violation":
            return queryset.filter(pk__in=monitoring.overdue_without_apology(queryset).values("pk"))
        if self.value() == "at_risk":
            return queryset.filter(pk__in=[d.pk for d, _left in monitoring.at_risk(queryset)])
        return queryset


class SupplementInline(admin.TabularInline):
    model = SupplementRequest
    extra = 0
    can_delete = False
    readonly_fields = ("documents", "message", "requested_at", "answered_at", "citizen_message")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ApologyInline(admin.TabularInline):
    model = Apology
    extra = 0
    can_delete = False
    readonly_fields = ("previous_appointment_at", "new_appointment_at", "reason", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def officer_dossiers(request: HttpRequest, queryset: QuerySet[Dossier]) -> QuerySet[Dossier]:
    return handled_by_officer(request.user, queryset)  # type: ignore[arg-type]


def officer_agencies(request: HttpRequest) -> QuerySet[Agency]:
    """The agencies the signed-in officer works for (all of them for a superuser)."""
    agencies = Agency.objects.all()
    if request.user.is_superuser:
        return agencies
    return agencies.filter(officers__user_id=str(request.user.pk))


@admin.register(Dossier)
class DossierLifecycleAdmin(AuditedAccountViews, AuditedSuperuserSearch, admin.ModelAdmin):
    change_form_template = "admin/dossiers/dossier/lifecycle_change_form.html"
    list_display = ("code", "agency", "procedure", "status", "appointment_at", "overdue_at")
    list_filter = ("status", DeadlineFilter, "agency")
    search_fields = ("code",)
    search_help_text = _("Any part of a dossier's code. A superuser's search is audited.")
    account_paths = ("applicant",)
    audit_by = "dossier"
    ordering = ("-submitted_at",)
    inlines = (SupplementInline, ApologyInline)
    actions = ("accept_selected", "start_processing_selected")
    readonly_fields = (
        "code",
        "procedure",
        "agency",
        "applicant",
        "organisation",
        "status",
        "channel",
        "form_data",
        "submitted_at",
        "accepted_at",
        "appointment_at",
        "original_appointment_at",
        "paused_at",
        "paused_working_seconds",
        "overdue_at",
        "apologised_at",
        "finished_at",
        "handed_over_at",
        "handover_method",
        "payment_amount",
        "version",
    )
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dossier]:
        queryset = super().get_queryset(request).exclude(status=Dossier.Status.DRAFT)
        return officer_dossiers(request, queryset).select_related("agency", "procedure")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def audits_views(self, request: HttpRequest) -> bool:
        # The rule of the admins of dossier rows: superusers, and support staff who
        # handle no agency; never an officer reading the dossiers they handle.
        return is_superuser(request) or support_view(request)

    def record_search(
        self, request: HttpRequest, term: str, rows: QuerySet[Any], fields: Iterable[str]
    ) -> None:
        record_superuser_dossier_search(request, term, rows, search_fields=fields)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "performance/",
                self.admin_site.admin_view(self.performance_view),
                name="dossiers_dossier_performance",
            ),
            path(
                "<path:object_id>/lifecycle/<str:action>/",
                self.admin_site.admin_view(self.lifecycle_view),
                name="dossiers_dossier_lifecycle",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        dossier = self.get_queryset(request).filter(pk=object_id).first()
        context = dict(extra_context or {})
        if dossier is not None and self.has_change_permission(request, dossier):
            allowed = lifecycle.allowed_actions(lifecycle.AGENCY, dossier.status)
            context["lifecycle_actions"] = [
                (
                    reverse("admin:dossiers_dossier_lifecycle", args=[dossier.pk, name]),
                    ACTION_TITLES[name],
                )
                for name in FORM_ACTIONS
                if name in allowed
            ]
        return super().change_view(request, object_id, form_url, context)

    def lifecycle_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if action not in FORM_ACTIONS:
            raise Http404
        dossier = self.get_queryset(request).filter(pk=object_id).first()
        if dossier is None or not self.has_change_permission(request, dossier):
            raise Http404
        change_url = reverse("admin:dossiers_dossier_change", args=[dossier.pk])
        form = LifecycleActionForm(
            action,
            dossier,
            request.POST if request.method == "POST" else None,
            request.FILES if request.method == "POST" else None,
        )
        if request.method == "POST" and form.is_valid():
            try:
                form.perform(dossier, Actor.officer(request.user))  # type: ignore[arg-type]
            except ApiError as exc:
                self.message_user(request, _report(exc), messages.ERROR)
            else:
                self.message_user(
                    request, _("Done: %(action)s.") % {"action": ACTION_TITLES[action]}
                )
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": dossier,
            "title": ACTION_TITLES[action],
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/dossiers/dossier/lifecycle_action.html", context)

    def performance_view(self, request: HttpRequest) -> HttpResponse:
        """The agency indicators (same figures as GET /api/v1/agency/performance)."""
        if not self.has_view_permission(request):
            raise Http404
        agencies = Agency.objects.order_by("code")
        if not request.user.is_superuser:
            agencies = agencies.filter(officers__user_id=str(request.user.pk))
        form = PerformanceForm(agencies, request.user.is_superuser, request.GET or None)
        figures = None
        if form.is_valid():
            data = form.cleaned_data
            figures = monitoring.performance(data["agency"], data["date_from"], data["date_to"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Agency performance"),
            "form": form,
            "figures": figures,
        }
        return TemplateResponse(request, "admin/dossiers/dossier/performance.html", context)

    def _bulk(self, request: HttpRequest, queryset: QuerySet[Dossier], action: str) -> None:
        # Checked again here: an action runs for whoever reaches the change list.
        if not self.has_change_permission(request):
            raise DjangoPermissionDenied
        actor = Actor.officer(request.user)  # type: ignore[arg-type]
        done = 0
        for dossier in officer_dossiers(request, queryset):
            try:
                move: Any = lifecycle.ACTIONS[action]
                move(dossier.pk, actor)
                done += 1
            except ApiError as exc:
                self.message_user(request, f"{dossier.code}: {_report(exc)}", messages.WARNING)
        if done:
            self.message_user(request, _("%(count)s dossiers updated.") % {"count": done})

    @admin.action(description=_("Accept the selected dossiers (form 01)"), permissions=["change"])
    def accept_selected(self, request: HttpRequest, queryset: QuerySet[Dossier]) -> None:
        self._bulk(request, queryset, "accept")

    @admin.action(description=_("Start processing the selected dossiers"), permissions=["change"])
    def start_processing_selected(self, request: HttpRequest, queryset: QuerySet[Dossier]) -> None:
        self._bulk(request, queryset, "start_processing")


def _report(exc: ApiError) -> str:
    details = exc.details
    if isinstance(details, list) and details:
        return "; ".join(str(item.get("message", "")) for item in details)
    return str(exc.message)


class OwnAgencyRows(admin.ModelAdmin):
    """Rows that belong to an agency (`agency` foreign key): an officer lists, picks
    and saves those of their own agencies only; a superuser all of them."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request).select_related("agency")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(agency__in=officer_agencies(request))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "agency":
            kwargs["queryset"] = officer_agencies(request).order_by("code")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(AgencyOfficer)
class AgencyOfficerAdmin(OwnAgencyRows):
    """Who works for which agency: an officer manages their own agencies' roster only.

    Without this, a staff user holding the add permission could attach themselves to
    any agency and then read and move its dossiers.
    """

    list_display = ("user", "agency")
    autocomplete_fields = ()
    raw_id_fields = ("user",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Checked again here: the form's choices are not the only way in.
        if not officer_agencies(request).filter(pk=obj.agency_id).exists():
            raise DjangoPermissionDenied
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        if not officer_agencies(request).filter(pk=obj.agency_id).exists():
            raise DjangoPermissionDenied
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AgencyOfficer]) -> None:
        super().delete_queryset(request, queryset.filter(agency__in=officer_agencies(request)))


@admin.register(AgencyCredential)
class AgencyCredentialAdmin(OwnAgencyRows):
    list_display = ("key_id", "agency", "label", "is_active", "rotated_at", "last_used_at")
    list_filter = ("is_active",)
    fields = ("agency", "label", "is_active", "key_id", "previous_valid_until", "last_used_at")
    readonly_fields = ("key_id", "previous_valid_until", "last_used_at")
    actions = ("rotate_secrets", "retire_previous_secrets")

    # An officer manages the credentials of their own agencies only (OwnAgencyRows);
    # rotating shows the new secret, so it needs the change permission, never "view".

    def _own(
        self, request: HttpRequest, queryset: QuerySet[AgencyCredential]
    ) -> QuerySet[AgencyCredential]:
        """The selected credentials the user may change; refuses anyone without the permission."""
        if not self.has_change_permission(request):
            raise DjangoPermissionDenied
        return queryset.filter(agency__in=officer_agencies(request))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not officer_agencies(request).filter(pk=obj.agency_id).exists():
            raise DjangoPermissionDenied
        if change:
            super().save_model(request, obj, form, change)
            return
        credential, secret = create_credential(obj.agency, obj.label)
        obj.pk = credential.pk
        obj.key_id = credential.key_id
        obj.secret_encrypted = credential.secret_encrypted
        obj.created_at = credential.created_at
        if not obj.is_active:
            AgencyCredential.objects.filter(pk=credential.pk).update(is_active=False)
        # Kept on the request only: never in a message cookie, the session or a log.
        request.new_agency_secrets = [(credential.key_id, secret)]  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        return self._show_secrets(request, request.new_agency_secrets)  # type: ignore[attr-defined]

    def _show_secrets(self, request: HttpRequest, secrets: list[tuple[str, str]]) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Copy the secret now"),
            "secrets": secrets,
            "changelist_url": reverse("admin:dossiers_agencycredential_changelist"),
        }
        response = TemplateResponse(request, "admin/dossiers/agencycredential/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(
        description=_("Rotate the secret (the old one keeps working for a while)"),
        permissions=["change"],
    )
    def rotate_secrets(
        self, request: HttpRequest, queryset: QuerySet[AgencyCredential]
    ) -> HttpResponse:
        shown = [
            (credential.key_id, rotate_credential(credential))
            for credential in self._own(request, queryset)
        ]
        return self._show_secrets(request, shown)

    @admin.action(description=_("Retire the previous secret now"), permissions=["change"])
    def retire_previous_secrets(
        self, request: HttpRequest, queryset: QuerySet[AgencyCredential]
    ) -> None:
        for credential in self._own(request, queryset):
            retire_previous_secret(credential)
        self.message_user(request, _("Previous secrets retired."))
