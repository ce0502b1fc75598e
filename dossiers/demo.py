"""Demo catalogue for `make run`: ten everyday procedures of Hà Nội (province 01).

The data lives in `dossiers/demo_catalogue.json` (agencies, procedures with their
forms and required documents); this module only reads and loads it. In that file
a string `"@name"` stands for `shared[name]` (a list one is spliced into the list
it stands in), and a required document takes `document_defaults` for the keys it
leaves out. The loader is idempotent: it updates rows in place by code.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from dossiers.catalogue import procedure_changed, refresh_search_text
from dossiers.form_spec import check_spec
from dossiers.models import Agency, AgencyCredential, Procedure, RequiredDocument

CATALOGUE_FILE = Path(__file__).with_name("demo_catalogue.json")


def _expand(value: Any, shared: dict[str, Any]) -> Any:
    """`value` with every `"@name"` replaced by `shared[name]` (spliced into lists)."""
    if isinstance(value, str) and value.startswith("@"):
        if value[1:] not in shared:
            raise ImproperlyConfigured(f"{CATALOGUE_FILE.name}: unknown shared entry {value}")
        return _expand(shared[value[1:]], shared)
    if isinstance(value, dict):
        return {key: _expand(item, shared) for key, item in value.items()}
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            expanded = _expand(item, shared)
            if isinstance(item, str) and item.startswith("@") and isinstance(expanded, list):
                items.extend(expanded)
            else:
                items.append(expanded)
        return items
    return value


@cache
def catalogue() -> dict[str, Any]:
    """The demo catalogue as the loader writes it: references expanded, defaults filled."""
    raw = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    shared = raw.get("shared", {})
    defaults = raw.get("document_defaults", {})
    procedures = []
    for entry in _expand(raw["procedures"], shared):
        documents = [{**defaults, **document} for document in entry.get("documents", [])]
        procedures.append({**entry, "documents": documents})
    return {
        "province_code": raw["province_code"],
        "agencies": raw["agencies"],
        "procedures": procedures,
    }


def load() -> str:
    if settings.PRODUCTION:
        raise ImproperlyConfigured("The demo catalogue is never loaded in production.")
    data = catalogue()
    created = 0
    with transaction.atomic():
        agencies: dict[str, Agency] = {}
        for agency in data["agencies"]:
            agencies[agency["code"]], _ = Agency.objects.update_or_create(
                code=agency["code"],
                defaults={**agency, "province_code": data["province_code"], "is_active": True},
            )
        for entry in data["procedures"]:
            problems = check_spec(entry["form"])
            if problems:
                raise ImproperlyConfigured(f"{entry['code']}: {'; '.join(problems)}")
            values = {
                key: value
                for key, value in entry.items()
                if key not in {"code", "agency", "form", "documents"}
            }
            procedure, was_created = Procedure.objects.update_or_create(
                code=entry["code"],
                defaults={
                    **values,
                    "agency": agencies[entry["agency"]],
                    "form_spec": entry["form"],
                    "is_active": True,
                },
            )
            created += was_created
            codes = []
            for position, document in enumerate(entry["documents"]):
                RequiredDocument.objects.update_or_create(
                    procedure=procedure,
                    code=document["code"],
                    defaults={**document, "position": position},
                )
                codes.append(document["code"])
            procedure.documents.exclude(code__in=codes).delete()
            refresh_search_text(procedure)
            procedure_changed(procedure)
    agencies_count, procedures_count = len(data["agencies"]), len(data["procedures"])
    return f"{agencies_count} agencies, {procedures_count} procedures ({created} new)"


CREDENTIALS_FILE = Path(__file__).with_name("demo_agency_credentials.json")


@cache
def agency_credentials() -> list[dict[str, str]]:
    """The demo agencies' signing keys (`dossiers/demo_agency_credentials.json`)."""
    data = json.loads(CREDENTIALS_FILE.read_text(encoding="utf-8"))
    return list(data["credentials"])


def load_agency_credentials() -> str:
    """Give the demo agencies their published demo key (idempotent: the secret is reset
    to the file's, the credential made active again)."""
    if settings.PRODUCTION:
        raise ImproperlyConfigured("Demo agency credentials are never loaded in production.")
    from dossiers.agency.credentials import encrypt_secret

    entries = agency_credentials()
    with transaction.atomic():
        for entry in entries:
            AgencyCredential.objects.update_or_create(
                key_id=entry["key_id"],
                defaults={
                    "agency": Agency.objects.get(code=entry["agency"]),
                    "label": entry["label"],
                    "secret_encrypted": encrypt_secret(entry["secret"]),
                    "previous_secret_encrypted": "",  # nosec B105 # clearing, not a secret
                    "previous_valid_until": None,
                    "is_active": True,
                },
            )
    return f"{len(entries)} agency credentials"


def credential_logins() -> list[str]:
    """What `make run` prints for each demo agency key."""
    return [
        f"Demo agency {entry['agency']}: X-Agency-Key {entry['key_id']} / secret {entry['secret']}"
        for entry in agency_credentials()
    ]
