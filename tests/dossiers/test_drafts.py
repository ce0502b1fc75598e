"""Drafts: create for oneself or an organisation, save partial forms, delete."""

from __future__ import annotations

import pytest

from auth.models import Membership
from dossiers.models import Attachment, Dossier, Procedure
from tests.conftest import make_user
from tests.dossiers.conftest import VALID_FORM, attach, client_for
from tests.factories import make_dossier, make_organisation

URL = "/api/v1/dossiers"


@pytest.mark.django_db
def test_create_draft_for_oneself(procedure: Procedure) -> None:
    user = make_user()
    response = client_for(user).post(
        URL, {"procedure_id": procedure.id, "form": {"full_name": "Lê Thị Hoa"}}
    )
    assert response.status_code == 201
    body = response.json()
    dossier = Dossier.objects.get()
    assert body["id"] == str(dossier.id)
    assert body["status"] == 0
    assert body["status_label"] == "Bản nháp"
    assert body["code"] is None
    assert body["form"] == {"full_name": "Lê Thị Hoa"}
    assert body["organisation_id"] is None
    assert body["applicant"] == {"id": str(user.id), "full_name": user.full_name}
    assert body["documents"] == [
        {
            "code": "doc-1",
            "name": "Giấy tờ 1",
            "mandatory": True,
            "min_files": 2,
            "max_files": 3,
            "attached": 0,
            "revoked": 0,
        },
        {
            "code": "doc-2",
            "name": "Giấy tờ 2",
            "mandatory": False,
            "min_files": 1,
            "max_files": 3,
            "attached": 0,
            "revoked": 0,
        },
    ]
    assert response.headers["ETag"]
    assert (dossier.applicant, dossier.agency, dossier.status) == (user, procedure.agency, 0)


@pytest.mark.django_db
def test_create_draft_for_an_organisation_one_belongs_to(procedure: Procedure) -> None:
    user = make_user()
    organisation = make_organisation(make_user())
    Membership.objects.create(organisation=organisation, user=user)
    response = client_for(user).post(
        URL, {"procedure_id": procedure.id, "organisation_id": str(organisation.id)}
    )
    assert response.status_code == 201
    assert response.json()["organisation_id"] == str(organisation.id)
    assert Dossier.objects.get().organisation == organisation


@pytest.mark.django_db
def test_create_draft_for_someone_elses_organisation_is_404(procedure: Procedure) -> None:
    organisation = make_organisation(make_user())
    response = client_for(make_user()).post(
        URL, {"procedure_id": procedure.id, "organisation_id": str(organisation.id)}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "organisation_not_found"
    assert Dossier.objects.count() == 0


@pytest.mark.django_db
def test_create_draft_of_unknown_or_inactive_procedure_is_404(procedure: Procedure) -> None:
    client = client_for(make_user())
    assert client.post(URL, {"procedure_id": 999999}).status_code == 404
    Procedure.objects.filter(pk=procedure.pk).update(is_active=False)
    response = client.post(URL, {"procedure_id": procedure.id})
    assert response.status_code == 404
    assert response.json()["code"] == "procedure_not_found"
    assert Dossier.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "extra",
    [
        {"status": 10},
        {"code": "HN-TEST-260101-0001"},
        {"applicant_id": "00000000-0000-0000-0000-000000000000"},
        {"agency_id": 1},
        {"owner": "me"},
    ],
)
def test_create_draft_refuses_fields_the_citizen_may_not_write(
    procedure: Procedure, extra: dict
) -> None:
    response = client_for(make_user()).post(URL, {"procedure_id": procedure.id, **extra})
    assert response.status_code == 422
    (name,) = extra
    assert response.json()["details"] == [
        {
            "field": name,
            "location": "body",
            "code": "extra_forbidden",
            "message": "Trường này không được phép.",
        }
    ]
    assert Dossier.objects.count() == 0


@pytest.mark.django_db
def test_create_draft_refuses_unknown_form_fields(procedure: Procedure) -> None:
    response = client_for(make_user()).post(
        URL, {"procedure_id": procedure.id, "form": {"salary": 1}}
    )
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": "form.salary",
            "location": "body",
            "code": "unknown_field",
            "message": "Biểu mẫu không có trường này.",
        }
    ]
    assert Dossier.objects.count() == 0


@pytest.mark.django_db
def test_open_drafts_limit_boundary(procedure: Procedure, settings) -> None:
    settings.DOSSIER_OPEN_DRAFTS_MAX = 2
    user = make_user()
    client = client_for(user)
    make_dossier(user, procedure, status=Dossier.Status.NEW)  # submitted ones do not count
    assert client.post(URL, {"procedure_id": procedure.id}).status_code == 201
    assert client.post(URL, {"procedure_id": procedure.id}).status_code == 201
    refused = client.post(URL, {"procedure_id": procedure.id})
    assert refused.status_code == 409
    assert refused.json()["code"] == "too_many_drafts"
    assert Dossier.objects.filter(status=Dossier.Status.DRAFT).count() == 2


@pytest.mark.django_db
def test_create_draft_is_idempotent_with_a_key(procedure: Procedure) -> None:
    client = client_for(make_user())
    key = {"Idempotency-Key": "draft-1"}
    first = client.post(URL, {"procedure_id": procedure.id}, headers=key)
    again = client.post(URL, {"procedure_id": procedure.id}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Dossier.objects.count() == 1


@pytest.mark.django_db
def test_patch_saves_partial_form_as_often_as_wanted(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure)
    client = client_for(user)
    first = client.patch(f"{URL}/{dossier.id}", {"form": {"full_name": "Lê", "phone": "09"}})
    assert first.status_code == 200
    assert first.json()["form"] == {"full_name": "Lê", "phone": "09"}
    second = client.patch(f"{URL}/{dossier.id}", {"form": {"phone": None, "copies": 3}})
    assert second.json()["form"] == {"full_name": "Lê", "copies": 3}
    dossier.refresh_from_db()
    assert dossier.form_data == {"full_name": "Lê", "copies": 3}
    assert dossier.version == 3
    assert first.headers["ETag"] != second.headers["ETag"]


@pytest.mark.django_db
def test_patch_refuses_unknown_form_fields_and_changes_nothing(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure, form_data={"full_name": "Lê"})
    response = client_for(user).patch(
        f"{URL}/{dossier.id}", {"form": {"full_name": "Hoa", "status": 10}}
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "form.status"
    dossier.refresh_from_db()
    assert (dossier.form_data, dossier.version, dossier.status) == ({"full_name": "Lê"}, 1, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("extra", [{"status": 1}, {"code": "X"}, {"organisation_id": None}])
def test_patch_refuses_fields_other_than_the_form(procedure: Procedure, extra: dict) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure)
    response = client_for(user).patch(f"{URL}/{dossier.id}", {"form": {}, **extra})
    assert response.status_code == 422
    assert response.json()["details"][0]["code"] == "extra_forbidden"


@pytest.mark.django_db
def test_patch_after_submission_is_409(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure, status=Dossier.Status.NEW, form_data=VALID_FORM)
    response = client_for(user).patch(f"{URL}/{dossier.id}", {"form": {"copies": 9}})
    assert response.status_code == 409
    assert response.json()["code"] == "not_a_draft"
    dossier.refresh_from_db()
    assert dossier.form_data == VALID_FORM


@pytest.mark.django_db
def test_delete_draft_removes_it_and_its_attachments(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure)
    attach(dossier, "doc-1", 2)
    response = client_for(user).delete(f"{URL}/{dossier.id}")
    assert response.status_code == 204
    assert response.content == b""
    assert Dossier.objects.count() == 0
    assert Attachment.objects.count() == 0


@pytest.mark.django_db
def test_delete_submitted_dossier_is_409(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure, status=Dossier.Status.NEW)
    response = client_for(user).delete(f"{URL}/{dossier.id}")
    assert response.status_code == 409
    assert response.json()["code"] == "not_a_draft"
    assert Dossier.objects.filter(pk=dossier.pk).exists()


@pytest.mark.django_db
def test_patch_with_a_nul_character_is_422_not_500(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure)
    response = client_for(user).patch(f"{URL}/{dossier.id}", {"form": {"full_name": "a\u0000"}})
    assert response.status_code == 422
    [detail] = response.json()["details"]
    assert (detail["field"], detail["code"]) == ("form.full_name", "nul_character")
    dossier.refresh_from_db()
    assert "full_name" not in dossier.form_data
