"""Listing and reading dossiers: own and organisation's, filters, ETag polling."""

from __future__ import annotations

import datetime as dt

import pytest

from auth.models import Membership
from dossiers.actions import update_draft
from dossiers.models import Dossier, Procedure
from tests.conftest import make_user
from tests.dossiers.conftest import client_for
from tests.factories import make_dossier, make_organisation, make_procedure

URL = "/api/v1/dossiers"
HANOI = dt.timezone(dt.timedelta(hours=7))


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["items"]]


@pytest.mark.django_db
def test_list_shows_own_and_organisation_dossiers_only(procedure: Procedure) -> None:
    user, colleague, stranger = make_user(), make_user(), make_user()
    organisation = make_organisation(colleague)
    Membership.objects.create(organisation=organisation, user=user)
    own = make_dossier(user, procedure)
    company = make_dossier(colleague, procedure, organisation=organisation)
    make_dossier(colleague, procedure)  # the colleague's private dossier
    make_dossier(stranger, procedure)
    response = client_for(user).get(URL)
    assert response.status_code == 200
    assert ids(response) == [str(company.id), str(own.id)]
    assert response.json()["next_cursor"] is None


@pytest.mark.django_db
def test_list_filters_by_status_procedure_and_organisation(procedure: Procedure) -> None:
    user = make_user()
    organisation = make_organisation(user)
    other_procedure = make_procedure()
    draft = make_dossier(user, procedure)
    submitted = make_dossier(user, procedure, status=Dossier.Status.NEW)
    other = make_dossier(user, other_procedure, organisation=organisation)
    client = client_for(user)
    assert ids(client.get(URL, query={"status": 0})) == [str(other.id), str(draft.id)]
    assert ids(client.get(URL, query={"status": 1})) == [str(submitted.id)]
    assert ids(client.get(URL, query={"procedure_id": other_procedure.id})) == [str(other.id)]
    assert ids(client.get(URL, query={"organisation_id": str(organisation.id)})) == [str(other.id)]
    assert client.get(URL, query={"status": 11}).status_code == 422


@pytest.mark.django_db
def test_list_filters_by_submission_date_in_vietnam(procedure: Procedure) -> None:
    user = make_user()
    on_1st_late = make_dossier(
        user, procedure, status=1, submitted_at=dt.datetime(2026, 3, 1, 23, 59, tzinfo=HANOI)
    )
    on_2nd = make_dossier(
        user, procedure, status=1, submitted_at=dt.datetime(2026, 3, 2, 0, 0, tzinfo=HANOI)
    )
    on_3rd = make_dossier(
        user, procedure, status=1, submitted_at=dt.datetime(2026, 3, 3, 8, 0, tzinfo=HANOI)
    )
    make_dossier(user, procedure)  # a draft has no submission date
    client = client_for(user)
    window = {"submitted_from": "2026-03-02", "submitted_to": "2026-03-02"}
    assert ids(client.get(URL, query=window)) == [str(on_2nd.id)]
    assert ids(client.get(URL, query={"submitted_to": "2026-03-01"})) == [str(on_1st_late.id)]
    assert ids(client.get(URL, query={"submitted_from": "2026-03-02"})) == [
        str(on_3rd.id),
        str(on_2nd.id),
    ]


@pytest.mark.django_db
def test_list_is_cursor_paginated(procedure: Procedure) -> None:
    user = make_user()
    dossiers = [make_dossier(user, procedure) for _ in range(3)]
    client = client_for(user)
    first = client.get(URL, query={"limit": 2}).json()
    assert [i["id"] for i in first["items"]] == [str(dossiers[2].id), str(dossiers[1].id)]
    second = client.get(URL, query={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [i["id"] for i in second["items"]] == [str(dossiers[0].id)]
    assert second["next_cursor"] is None


@pytest.mark.django_db
def test_get_answers_304_while_the_etag_matches(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure)
    client = client_for(user)
    first = client.get(f"{URL}/{dossier.id}")
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    unchanged = client.get(f"{URL}/{dossier.id}", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["ETag"] == etag
    listed = client.get(f"{URL}/{dossier.id}", headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304

    update_draft(user, dossier.id, {"full_name": "Hoa"})
    changed = client.get(f"{URL}/{dossier.id}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.json()["form"] == {"full_name": "Hoa"}
    assert changed.json()["version"] == 2


@pytest.mark.django_db
def test_etag_differs_per_language(procedure: Procedure) -> None:
    user = make_user()
    dossier = make_dossier(user, procedure)
    vi = client_for(user).get(f"{URL}/{dossier.id}")
    en = client_for(user, language="en").get(f"{URL}/{dossier.id}")
    assert vi.headers["ETag"] != en.headers["ETag"]
    assert "Accept-Language" in en.headers["Vary"]
    assert vi.json()["status_label"] == "Bản nháp"
    assert en.json()["status_label"] == "Draft"
    assert en.json()["procedure"]["name"] == procedure.name_en


@pytest.mark.django_db
def test_get_with_malformed_id_is_422_and_unknown_id_is_404(procedure: Procedure) -> None:
    client = client_for(make_user())
    assert client.get(f"{URL}/not-a-uuid").status_code == 422
    missing = client.get(f"{URL}/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
