"""Procedures that need a national identity level: submission below it is refused."""

from __future__ import annotations

import pytest

from auth.models import NationalIdentity, User
from dossiers.models import Dossier, DossierEvent, Procedure
from fakes.identity_provider import FakeIdentityProvider
from tests.accounts.national import national_callback
from tests.conftest import ApiClient
from tests.dossiers.conftest import RICH_FORM, VALID_FORM, attach, client_for
from tests.factories import make_dossier, make_procedure

URL = "/api/v1/dossiers"


def complete_draft(procedure: Procedure, **extra: object) -> Dossier:
    dossier = make_dossier(procedure=procedure, form_data=VALID_FORM, **extra)
    attach(dossier, "doc-1", 1)
    return dossier


def link(user: User, level: int) -> None:
    NationalIdentity.objects.create(
        user=user, issuer="http://idp.test", subject=f"sub-{user.pk}", level=level
    )


@pytest.mark.django_db
def test_an_account_without_a_national_identity_is_told_to_sign_in_with_it() -> None:
    procedure = make_procedure(form_spec=RICH_FORM, min_identity_level=2)
    dossier = complete_draft(procedure)

    response = client_for(dossier.applicant).post(f"{URL}/{dossier.id}/submit")

    assert response.status_code == 403
    assert response.json()["code"] == "identity_level_too_low"
    assert response.json()["details"] == {
        "required_level": 2,
        "identity_level": 0,
        "sign_in": "national",
    }
    dossier.refresh_from_db()
    assert (dossier.status, dossier.code, dossier.submitted_at) == (0, None, None)
    assert not DossierEvent.objects.filter(dossier=dossier).exists()


@pytest.mark.django_db
def test_level_1_is_below_a_level_2_procedure_and_enough_for_level_1() -> None:
    strict = complete_draft(make_procedure(form_spec=RICH_FORM, min_identity_level=2))
    link(strict.applicant, 1)
    lenient = complete_draft(
        make_procedure(form_spec=RICH_FORM, min_identity_level=1), applicant=strict.applicant
    )
    api = client_for(strict.applicant)

    refused = api.post(f"{URL}/{strict.id}/submit")
    accepted = api.post(f"{URL}/{lenient.id}/submit")

    assert refused.status_code == 403
    assert refused.json()["details"]["identity_level"] == 1
    assert accepted.status_code == 200, accepted


@pytest.mark.django_db
def test_the_catalogue_shows_the_level_a_procedure_needs(api: ApiClient) -> None:
    procedure = make_procedure(form_spec=RICH_FORM, min_identity_level=2)

    response = api.get(f"/api/v1/catalogue/procedures/{procedure.id}")

    assert response.status_code == 200
    assert response.json()["min_identity_level"] == 2


@pytest.mark.django_db
def test_after_a_national_sign_in_at_level_2_the_dossier_is_submitted(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    tokens = national_callback(api, min_level=2).json()["tokens"]
    citizen = User.objects.get(national_identity__level=2)
    dossier = complete_draft(
        make_procedure(form_spec=RICH_FORM, min_identity_level=2), applicant=citizen
    )

    response = ApiClient(token=tokens["access_token"]).post(f"{URL}/{dossier.id}/submit")

    assert response.status_code == 200, response
    assert response.json()["status"] == 1


def test_submit_declares_its_403_in_the_published_document() -> None:
    """A generated client must know that submit can answer identity_level_too_low."""
    import json

    from backend.management.commands.export_openapi import OPENAPI_PATH

    paths = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))["paths"]
    operation = paths["/api/v1/dossiers/{dossier_id}/submit"]["post"]
    assert "403" in operation["responses"]
    assert "identity_level_too_low" in operation["description"]
