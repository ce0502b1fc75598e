"""Admin for the catalogue: agencies, their calendars, procedures and their documents.

The Dossier admin is registered by the agency back-office module.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from dossiers.catalogue import procedure_changed, refresh_search_text
from dossiers.form_spec import check_spec
from dossiers.models import Agency, AgencyCalendarDay, DocumentType, Procedure, RequiredDocument


class AgencyCalendarDayInline(admin.TabularInline):
    model = AgencyCalendarDay
    extra = 0


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "level", "province_code", "commune_code", "is_active")
    list_filter = ("level", "is_active")
    search_fields = ("code", "name", "name_en")
    inlines = (AgencyCalendarDayInline,)


class RequiredDocumentInline(admin.StackedInline):
    model = RequiredDocument
    extra = 0
    filter_horizontal = ("accepted_types",)


class ProcedureForm(forms.ModelForm):
    class Meta:
        model = Procedure
        fields = "__all__"  # noqa: DJ007 - the catalogue editor edits every field

    def clean_form_spec(self) -> Any:
        spec = self.cleaned_data["form_spec"]
        problems = check_spec(spec)
        if problems:
            raise forms.ValidationError(problems)
        return spec


@admin.register(Procedure)
class ProcedureAdmin(admin.ModelAdmin):
    form = ProcedureForm
    list_display = ("code", "name", "field", "agency", "service_level", "is_active")
    list_filter = ("service_level", "is_active", "agency")
    search_fields = ("code", "name", "name_en", "search_text")
    readonly_fields = ("search_text",)
    inlines = (RequiredDocumentInline,)

    def save_model(self, request: HttpRequest, obj: Procedure, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        refresh_search_text(obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # After the documents inline: dossier reads drop their cached documents.
        procedure_changed(form.instance)


# The Dossier admin (officer actions) lives in its own module.
from dossiers import admin_lifecycle  # noqa: E402, F401


@admin.register(DocumentType)
class DocumentTypeAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_en")
    search_fields = ("code", "name", "name_en")
