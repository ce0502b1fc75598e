"""The procedure catalogue: search with and without diacritics, filters, languages."""

from __future__ import annotations

import unicodedata

import pytest
from django.contrib.admin.sites import AdminSite
from django.test import RequestFactory

from backend.text import fold
from dossiers import demo
from dossiers.admin import ProcedureAdmin, ProcedureForm
from dossiers.catalogue import refresh_search_text
from dossiers.form_spec import check_spec
from dossiers.models import Agency, Procedure
from tests.conftest import ApiClient
from tests.factories import make_agency, make_procedure

URL = "/api/v1/catalogue"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đăng ký khai sinh", "dang ky khai sinh"),
        ("ĐĂNG KÝ  KHAI   SINH", "dang ky khai sinh"),
        ("Cấp phiếu lý lịch tư pháp", "cap phieu ly lich tu phap"),
        ("Chứng thực bản sao", "chung thuc ban sao"),
        # Decomposed input (as some keyboards send it) gives the same result.
        (unicodedata.normalize("NFD", "Đăng ký khai sinh"), "dang ky khai sinh"),
        ("  Hộ kinh doanh ", "ho kinh doanh"),
    ],
)
def test_normalise_strips_diacritics_and_case(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.fixture
def catalogue(db: None) -> dict[str, Procedure]:
    ward = make_agency("HN-W1", name="UBND phường Ba Đình", name_en="Ba Dinh Ward")
    city = make_agency("HN-STP", name="Sở Tư pháp", level=Agency.Level.PROVINCE)
    procedures = {
        "birth": make_procedure(
            ward,
            name="Đăng ký khai sinh",
            name_en="Birth registration",
            field="Hộ tịch",
            field_en="Civil status",
            service_level=Procedure.ServiceLevel.WHOLE,
        ),
        "death": make_procedure(
            ward,
            name="Đăng ký khai tử",
            name_en="Death registration",
            field="Hộ tịch",
            field_en="Civil status",
            service_level=Procedure.ServiceLevel.PARTIAL,
        ),
        "record": make_procedure(
            city,
            name="Cấp Phiếu lý lịch tư pháp",
            name_en="Criminal record certificate",
            field="Lý lịch tư pháp",
            field_en="Judicial records",
            service_level=Procedure.ServiceLevel.WHOLE,
        ),
        "hidden": make_procedure(ward, name="Đăng ký khai sinh lưu động", is_active=False),
    }
    for procedure in procedures.values():
        refresh_search_text(procedure)
    return procedures


def names(response) -> list[str]:
    return [item["name"] for item in response.json()["items"]]


def test_save_does_not_fill_search_text(db: None) -> None:
    procedure = make_procedure(name="Đăng ký khai sinh")
    procedure.refresh_from_db()
    assert procedure.search_text == ""
    refresh_search_text(procedure)
    procedure.refresh_from_db()
    assert procedure.search_text == (
        f"{procedure.code} dang ky khai sinh test procedure {procedure.code[2:].lstrip('0')} "
        "ho tich civil status"
    )


@pytest.mark.parametrize(
    "query",
    ["khai sinh", "KHAI SINH", "dang ky khai sinh", "Đăng ký khai sinh", "đăng ký KHAI sinh"],
)
def test_search_with_or_without_diacritics_finds_birth_registration(
    api: ApiClient, catalogue: dict[str, Procedure], query: str
) -> None:
    response = api.get(f"{URL}/procedures", query={"q": query})
    assert response.status_code == 200
    assert names(response) == ["Đăng ký khai sinh"]


def test_search_matches_every_word_and_english_names(
    api: ApiClient, catalogue: dict[str, Procedure]
) -> None:
    assert names(api.get(f"{URL}/procedures", query={"q": "đăng ký"})) == [
        "Đăng ký khai sinh",
        "Đăng ký khai tử",
    ]
    assert names(api.get(f"{URL}/procedures", query={"q": "criminal record"})) == [
        "Cấp Phiếu lý lịch tư pháp"
    ]
    assert names(api.get(f"{URL}/procedures", query={"q": "khai sinh tu phap"})) == []


def test_filters_by_agency_field_and_level(api: ApiClient, catalogue: dict[str, Procedure]) -> None:
    ward_id = catalogue["birth"].agency_id
    assert names(api.get(f"{URL}/procedures", query={"agency_id": ward_id})) == [
        "Đăng ký khai sinh",
        "Đăng ký khai tử",
    ]
    assert names(api.get(f"{URL}/procedures", query={"field": "Lý lịch tư pháp"})) == [
        "Cấp Phiếu lý lịch tư pháp"
    ]
    assert names(api.get(f"{URL}/procedures", query={"field": "civil status"})) == [
        "Đăng ký khai sinh",
        "Đăng ký khai tử",
    ]
    assert names(api.get(f"{URL}/procedures", query={"service_level": "partial"})) == [
        "Đăng ký khai tử"
    ]
    bad = api.get(f"{URL}/procedures", query={"service_level": "level4"})
    assert bad.status_code == 422


def test_procedures_are_cursor_paginated(api: ApiClient, catalogue: dict[str, Procedure]) -> None:
    first = api.get(f"{URL}/procedures", query={"limit": 2}).json()
    assert [i["name"] for i in first["items"]] == ["Cấp Phiếu lý lịch tư pháp", "Đăng ký khai sinh"]
    second = api.get(f"{URL}/procedures", query={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [i["name"] for i in second["items"]] == ["Đăng ký khai tử"]
    assert second["next_cursor"] is None


def test_search_length_limit_boundary(
    api: ApiClient, catalogue: dict[str, Procedure], settings
) -> None:
    settings.CATALOGUE_SEARCH_MAX_CHARS = 10
    assert api.get(f"{URL}/procedures", query={"q": "khai sinh "}).status_code == 200
    response = api.get(f"{URL}/procedures", query={"q": "khai sinh x"})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "q"
    assert response.json()["details"][0]["code"] == "too_long"


def test_procedure_detail_in_vietnamese(api: ApiClient, catalogue: dict[str, Procedure]) -> None:
    procedure = catalogue["birth"]
    body = api.get(f"{URL}/procedures/{procedure.id}").json()
    assert body["name"] == "Đăng ký khai sinh"
    assert body["field"] == "Hộ tịch"
    assert body["agency"] == {
        "id": procedure.agency_id,
        "code": "HN-W1",
        "name": "UBND phường Ba Đình",
    }
    assert body["documents"] == [
        {
            "code": "doc-1",
            "name": "Giấy tờ 1",
            "mandatory": True,
            "accepted_kinds": ["photo", "pdf"],
            "accepted_types": [],
            "min_files": 1,
            "max_files": 3,
            "guidance": "",
        }
    ]
    assert body["form"][0] == {
        "name": "full_name",
        "type": "text",
        "label": "Họ và tên",
        "help": "",
        "required": True,
        "min": None,
        "max": None,
        "min_length": None,
        "max_length": 100,
        "integer": None,
        "old_address": None,
        "choices": None,
    }


def test_procedure_detail_in_english(catalogue: dict[str, Procedure]) -> None:
    procedure = catalogue["birth"]
    body = ApiClient(language="en").get(f"{URL}/procedures/{procedure.id}").json()
    assert body["name"] == "Birth registration"
    assert body["field"] == "Civil status"
    assert body["agency"]["name"] == "Ba Dinh Ward"
    assert body["documents"][0]["name"] == "Document 1"
    assert [f["label"] for f in body["form"]] == ["Full name", "Date of birth"]


def test_inactive_or_unknown_procedure_is_404(
    api: ApiClient, catalogue: dict[str, Procedure]
) -> None:
    for procedure_id in (catalogue["hidden"].id, 999999):
        response = api.get(f"{URL}/procedures/{procedure_id}")
        assert response.status_code == 404
        assert response.json()["code"] == "procedure_not_found"


def test_agencies_list_and_filter(api: ApiClient, catalogue: dict[str, Procedure]) -> None:
    make_agency("ZZ-OFF", is_active=False)
    body = api.get(f"{URL}/agencies").json()
    assert [a["code"] for a in body["items"]] == ["HN-STP", "HN-W1"]
    assert body["items"][1]["office_hours"] == [["07:00", "11:30"], ["13:30", "17:00"]]
    provinces = api.get(f"{URL}/agencies", query={"level": "province"}).json()
    assert [a["code"] for a in provinces["items"]] == ["HN-STP"]


def test_fields_list(api: ApiClient, catalogue: dict[str, Procedure]) -> None:
    assert api.get(f"{URL}/fields").json() == [
        {"value": "Hộ tịch", "label": "Hộ tịch"},
        {"value": "Lý lịch tư pháp", "label": "Lý lịch tư pháp"},
    ]
    english = ApiClient(language="en").get(f"{URL}/fields").json()
    assert english == [
        {"value": "Hộ tịch", "label": "Civil status"},
        {"value": "Lý lịch tư pháp", "label": "Judicial records"},
    ]


def test_admin_save_refreshes_search_text(db: None) -> None:
    procedure = make_procedure(name="Chứng thực bản sao")
    procedure.name = "Chứng thực bản sao từ bản chính"
    admin = ProcedureAdmin(Procedure, AdminSite())
    admin.save_model(RequestFactory().post("/"), procedure, form=None, change=True)
    procedure.refresh_from_db()
    assert procedure.search_text.startswith(f"{procedure.code} chung thuc ban sao tu ban chinh ")


def test_admin_form_refuses_a_bad_form_spec(db: None) -> None:
    procedure = make_procedure()
    form = ProcedureForm(instance=procedure)
    form.cleaned_data = {"form_spec": [{"name": "x", "type": "colour", "label": "X"}]}
    with pytest.raises(Exception, match="type must be one of"):
        form.clean_form_spec()


def test_demo_catalogue_loads_idempotently(api: ApiClient, db: None, settings) -> None:
    assert "dossiers.demo.load" in settings.DEMO_LOADERS
    assert demo.load() == "6 agencies, 10 procedures (10 new)"
    assert demo.load() == "6 agencies, 10 procedures (0 new)"
    assert Procedure.objects.count() == 10
    assert Agency.objects.filter(province_code="01").count() == 6
    assert set(Agency.objects.values_list("level", flat=True)) == {"province", "commune"}
    for procedure in Procedure.objects.all():
        assert check_spec(procedure.form_spec) == [], procedure.code
        assert procedure.documents.count() >= 1, procedure.code
    assert names(api.get(f"{URL}/procedures", query={"q": "khai sinh"})) == ["Đăng ký khai sinh"]
    birth = Procedure.objects.get(code="1.001193")
    assert birth.agency.commune_code == "00004"


def test_demo_catalogue_is_refused_in_production(settings) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured):
        demo.load()
