"""What one dossier read costs, and the in-memory catalogue copy it relies on.

Status polling is the app's most frequent request: a read is two queries (the
session, then the dossier with its procedure, agency, applicant and the codes of
its attachments). The procedure's required documents come from each process's
memory, keyed by the procedure's version, so an edit shows up at once.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from auth.actions.sessions import revoke_session
from auth.models import Membership
from dossiers.catalogue import procedure_changed
from dossiers.models import Dossier, Procedure, RequiredDocument
from tests.conftest import ApiClient, make_user, sign_in
from tests.dossiers.conftest import attach, client_for
from tests.factories import make_dossier, make_organisation

URL = "/api/v1/dossiers"


def attached(response: Any) -> dict[str, int]:
    return {doc["code"]: doc["attached"] for doc in response.json()["documents"]}


@pytest.mark.django_db
def test_a_read_is_two_queries_with_documents_and_attachments(
    procedure: Procedure, django_assert_num_queries: Any
) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure, status=Dossier.Status.NEW)
    attach(dossier, "doc-1", 2)
    attach(dossier, "doc-2")
    client = client_for(user)
    first = client.get(f"{URL}/{dossier.id}")  # reads the documents once per process
    assert attached(first) == {"doc-1": 2, "doc-2": 1}
    with django_assert_num_queries(2):  # the session, the dossier
        again = client.get(f"{URL}/{dossier.id}")
    assert again.status_code == 200
    assert again.json() == first.json()
    with django_assert_num_queries(2):
        unchanged = client.get(
            f"{URL}/{dossier.id}", headers={"If-None-Match": first.headers["ETag"]}
        )
    assert unchanged.status_code == 304


@pytest.mark.django_db
def test_an_organisation_member_reads_with_one_more_query_for_the_membership(
    procedure: Procedure, django_assert_num_queries: Any
) -> None:
    owner, member = make_user(), make_user(full_name="Trần Văn Nam")
    organisation = make_organisation(owner)
    Membership.objects.create(organisation=organisation, user=member)
    dossier = make_dossier(owner, procedure, organisation=organisation)
    attach(dossier, "doc-2")
    client = client_for(member)
    client.get(f"{URL}/{dossier.id}")
    with django_assert_num_queries(3):  # the session, the dossier, the membership
        response = client.get(f"{URL}/{dossier.id}")
    assert response.status_code == 200
    assert response.json()["applicant"] == {"id": str(owner.id), "full_name": owner.full_name}
    assert attached(response) == {"doc-1": 0, "doc-2": 1}
    assert client_for(make_user()).get(f"{URL}/{dossier.id}").status_code == 404


@pytest.mark.django_db
def test_a_revoked_session_can_no_longer_read(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure)
    session, tokens = sign_in(user)
    client = ApiClient(token=tokens.access_token)
    assert client.get(f"{URL}/{dossier.id}").status_code == 200
    revoke_session(session, reason="logout")
    assert client.get(f"{URL}/{dossier.id}").status_code == 401


@pytest.mark.django_db
def test_edited_required_documents_show_up_in_the_next_read(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure)
    client = client_for(user)
    before = client.get(f"{URL}/{dossier.id}")
    assert [doc["code"] for doc in before.json()["documents"]] == ["doc-1", "doc-2"]

    RequiredDocument.objects.filter(procedure=procedure, code="doc-2").update(name="Sổ hộ khẩu")
    RequiredDocument.objects.create(procedure=procedure, code="doc-3", name="Ảnh", position=9)
    procedure_changed(procedure)

    after = client.get(f"{URL}/{dossier.id}", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200  # the documents changed, so the ETag did too
    assert [(doc["code"], doc["name"]) for doc in after.json()["documents"]] == [
        ("doc-1", "Giấy tờ 1"),
        ("doc-2", "Sổ hộ khẩu"),
        ("doc-3", "Ảnh"),
    ]


def change_form_data(page: Any) -> dict[str, Any]:
    """The POST the admin's change page would send unchanged (main form and inlines)."""
    data: dict[str, Any] = {}

    def put(bound: Any) -> None:
        value = bound.value()
        if isinstance(value, bool):
            if value:
                data[bound.html_name] = "on"
        elif value is not None:
            data[bound.html_name] = value

    for bound in page.context["adminform"].form:
        put(bound)
    for inline in page.context["inline_admin_formsets"]:
        for bound in inline.formset.management_form:
            put(bound)
        for form in inline.formset.forms:
            for bound in form:
                put(bound)
    return data


@pytest.mark.django_db
def test_a_document_edited_in_the_admin_shows_up_in_the_next_read(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure)
    reader = client_for(user, language="en")
    assert reader.get(f"{URL}/{dossier.id}").json()["documents"][0]["name"] == "Document 1"

    editor = Client()
    editor.force_login(make_user(password=None, is_staff=True, is_superuser=True))
    change_url = f"/admin/dossiers/procedure/{procedure.pk}/change/"
    data = change_form_data(editor.get(change_url))
    name_field = next(key for key, value in data.items() if value == "Document 1")
    data[name_field] = "Birth certificate"
    response = editor.post(change_url, data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""

    documents = reader.get(f"{URL}/{dossier.id}").json()["documents"]
    assert [doc["name"] for doc in documents] == ["Birth certificate", "Document 2"]
