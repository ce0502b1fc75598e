"""The demo data files load exactly what the Python demo modules used to write.

`EXPECTED_SHA256` is the digest of `catalogue_rows()` after a fresh-database load
by the former `dossiers/demo.py` (929 lines of Python, commit 8a4fc70), taken
before the data moved to `dossiers/demo_catalogue.json`.
"""

from __future__ import annotations

import hashlib
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from auth import demo as auth_demo
from auth.models import User
from dossiers import demo
from dossiers.models import Agency, Procedure, RequiredDocument

AGENCY_FIELDS = ("code", "name", "name_en", "level", "province_code", "commune_code", "is_active")
PROCEDURE_FIELDS = (
    "code",
    "name",
    "name_en",
    "field",
    "field_en",
    "service_level",
    "processing_time",
    "processing_unit",
    "fee_amount",
    "fee_timing",
    "postal_return_allowed",
    "electronic_result",
    "description",
    "description_en",
    "form_spec",
    "search_text",
    "is_active",
)
DOCUMENT_FIELDS = (
    "code",
    "position",
    "name",
    "name_en",
    "mandatory",
    "accepted_kinds",
    "min_files",
    "max_files",
    "guidance",
    "guidance_en",
)
EXPECTED_SHA256 = "6decb86b5a58b9fd809c44a8d86e40b95f360ca03cd0f8c137293f1bd0e3bb2d"


def catalogue_rows() -> dict[str, list[dict[str, Any]]]:
    return {
        "agencies": [
            {name: getattr(agency, name) for name in AGENCY_FIELDS}
            for agency in Agency.objects.order_by("code")
        ],
        "procedures": [
            {**{name: getattr(p, name) for name in PROCEDURE_FIELDS}, "agency": p.agency.code}
            for p in Procedure.objects.select_related("agency").order_by("code")
        ],
        "documents": [
            {**{name: getattr(d, name) for name in DOCUMENT_FIELDS}, "procedure": d.procedure.code}
            for d in RequiredDocument.objects.select_related("procedure").order_by(
                "procedure__code", "position"
            )
        ],
    }


def digest(rows: dict[str, list[dict[str, Any]]]) -> str:
    text = json.dumps(rows, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def test_fresh_load_writes_what_the_python_catalogue_wrote(db: None) -> None:
    assert demo.load() == "6 agencies, 10 procedures (10 new)"

    rows = catalogue_rows()
    assert [a["code"] for a in rows["agencies"]] == [
        "HN-BADINH",
        "HN-BADINH-CA",
        "HN-BHXH",
        "HN-CA",
        "HN-HOANKIEM",
        "HN-STP",
    ]
    assert [(p["code"], p["agency"]) for p in rows["procedures"]] == [
        ("1.000894", "HN-HOANKIEM"),
        ("1.001193", "HN-BADINH"),
        ("1.002804", "HN-CA"),
        ("1.004194", "HN-BADINH-CA"),
        ("1.004873", "HN-BADINH"),
        ("1.009994", "HN-HOANKIEM"),
        ("1.011465", "HN-BHXH"),
        ("2.000488", "HN-STP"),
        ("2.000720", "HN-BADINH"),
        ("2.000815", "HN-BADINH"),
    ]
    documents: dict[str, list[str]] = {}
    for row in rows["documents"]:
        documents.setdefault(row["procedure"], []).append(row["code"])
    assert documents == {
        "1.000894": ["marriage-status"],
        "1.001193": ["birth-certificate", "marriage-certificate"],
        "1.002804": ["health-certificate", "licence", "portrait"],
        "1.004194": ["ct01", "home-proof"],
        "1.004873": ["divorce-paper"],
        "1.009994": ["land-certificate", "drawings", "neighbour-commitment"],
        "1.011465": ["tk1-ts"],
        "2.000488": ["id-card"],
        "2.000720": ["id-card", "premises"],
        "2.000815": ["original"],
    }
    # Every field of every row, as the Python catalogue wrote them.
    assert digest(rows) == EXPECTED_SHA256


def test_shared_entries_are_expanded_and_document_defaults_filled() -> None:
    birth = next(p for p in demo.catalogue()["procedures"] if p["code"] == "1.001193")
    names = [field["name"] for field in birth["form"]]
    assert names[:3] == ["applicant_name", "applicant_citizen_id", "applicant_phone"]
    assert names[-1] == "pledge"
    relationship = next(f for f in birth["form"] if f["name"] == "relationship")
    assert [c["value"] for c in relationship["choices"]] == [
        "father",
        "mother",
        "grandparent",
        "other",
    ]
    certificate = birth["documents"][0]
    assert certificate["accepted_kinds"] == ["photo", "pdf"]
    assert (certificate["min_files"], certificate["max_files"]) == (1, 2)  # max_files set
    assert (certificate["mandatory"], certificate["guidance"] != "") == (True, True)
    assert '"@' not in json.dumps(demo.catalogue(), ensure_ascii=False)


def test_demo_accounts_are_the_published_logins(db: None) -> None:
    assert auth_demo.load() == "citizen created, admin created"
    assert auth_demo.load() == "citizen present, admin present"

    citizen = User.objects.get(phone="+84912345678")
    admin = User.objects.get(phone="+84900000001")
    assert (citizen.full_name, citizen.is_staff, citizen.is_superuser) == (
        "Nguyễn Văn An",
        False,
        False,
    )
    assert (admin.full_name, admin.is_staff, admin.is_superuser) == (
        "Trần Thị Bình (admin)",
        True,
        True,
    )
    assert citizen.verification_level == admin.verification_level == User.Level.PHONE
    assert citizen.phone_verified_at is not None
    assert citizen.check_password("demo-Passw0rd!")
    assert admin.check_password("demo-Passw0rd!")
    assert User.objects.count() == 2


def test_load_demo_command_runs_every_loader_and_prints_the_logins(db: None) -> None:
    out = StringIO()
    call_command("load_demo", stdout=out)
    assert out.getvalue().splitlines() == [
        "auth.demo.load: citizen created, admin created",
        "dossiers.demo.load: 6 agencies, 10 procedures (10 new)",
        "dossiers.demo.load_agency_credentials: 1 agency credentials",
    ]
    assert Procedure.objects.count() == 10
    assert User.objects.filter(phone__in=["+84912345678", "+84900000001"]).count() == 2

    logins = StringIO()
    call_command("load_demo", "--print-logins", stdout=logins)
    assert logins.getvalue().splitlines() == [
        "  Demo citizen: +84912345678 / demo-Passw0rd!",
        "  Demo admin:   +84900000001 / demo-Passw0rd! (admin site)",
        "  Demo agency HN-BADINH: X-Agency-Key ak_demo_hn_badinh"
        " / secret demo-agency-secret-HN-BADINH-not-for-production",
    ]


def test_the_demo_agency_credential_signs_for_its_agency(db: None) -> None:
    from dossiers.agency.credentials import valid_secrets
    from dossiers.demo import agency_credentials, load, load_agency_credentials
    from dossiers.models import AgencyCredential

    load()
    assert load_agency_credentials() == "1 agency credentials"
    assert load_agency_credentials() == "1 agency credentials"  # idempotent
    [entry] = agency_credentials()
    credential = AgencyCredential.objects.get(key_id=entry["key_id"])
    assert credential.agency.code == entry["agency"] == "HN-BADINH"
    assert credential.is_active
    from django.utils import timezone

    assert valid_secrets(credential, timezone.now()) == [entry["secret"]]


def test_demo_agency_credentials_are_refused_in_production(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from dossiers.demo import load_agency_credentials

    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured):
        load_agency_credentials()


def test_demo_accounts_are_refused_in_production(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured):
        auth_demo.load()
