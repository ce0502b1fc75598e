"""Satisfaction rating: once, after the result was handed over."""

from __future__ import annotations

import pytest

from dossiers.models import Dossier, DossierEvent, Procedure
from tests.conftest import make_user
from tests.dossiers.conftest import client_for
from tests.factories import make_dossier

URL = "/api/v1/dossiers"


@pytest.fixture
def handed_over(procedure: Procedure) -> Dossier:
    return make_dossier(make_user(), procedure, status=Dossier.Status.HANDED_OVER)


@pytest.mark.django_db
def test_rating_after_hand_over_is_recorded_with_an_event(handed_over: Dossier) -> None:
    response = client_for(handed_over.applicant).post(
        f"{URL}/{handed_over.id}/rating", {"satisfaction": 1, "comment": " Nhanh, chu đáo "}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["satisfaction"], body["satisfaction_comment"]) == (1, "Nhanh, chu đáo")
    handed_over.refresh_from_db()
    assert handed_over.satisfaction == Dossier.Satisfaction.VERY_SATISFIED
    assert handed_over.rated_at is not None
    assert handed_over.version == 2
    (event,) = DossierEvent.objects.filter(dossier=handed_over)
    assert (event.type, event.actor_type, event.status_before, event.status_after) == (
        "dossier.rated",
        "citizen",
        10,
        10,
    )
    assert event.data == {"satisfaction": 1}


@pytest.mark.django_db
def test_rating_twice_is_409(handed_over: Dossier) -> None:
    client = client_for(handed_over.applicant)
    assert client.post(f"{URL}/{handed_over.id}/rating", {"satisfaction": 3}).status_code == 200
    again = client.post(f"{URL}/{handed_over.id}/rating", {"satisfaction": 1})
    assert again.status_code == 409
    assert again.json()["code"] == "already_rated"
    handed_over.refresh_from_db()
    assert handed_over.satisfaction == 3
    assert DossierEvent.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", [0, 1, 2, 4, 9])
def test_rating_before_hand_over_is_409(procedure: Procedure, status: int) -> None:
    dossier = make_dossier(make_user(), procedure, status=status)
    response = client_for(dossier.applicant).post(f"{URL}/{dossier.id}/rating", {"satisfaction": 2})
    assert response.status_code == 409
    assert response.json()["code"] == "not_handed_over"
    dossier.refresh_from_db()
    assert dossier.satisfaction is None
    assert DossierEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("level", [0, 4, "good"])
def test_rating_level_must_be_1_to_3(handed_over: Dossier, level) -> None:
    response = client_for(handed_over.applicant).post(
        f"{URL}/{handed_over.id}/rating", {"satisfaction": level}
    )
    assert response.status_code == 422
    handed_over.refresh_from_db()
    assert handed_over.satisfaction is None


@pytest.mark.django_db
def test_rating_comment_length_boundary(handed_over: Dossier, settings) -> None:
    settings.DOSSIER_RATING_COMMENT_MAX_CHARS = 10
    client = client_for(handed_over.applicant)
    too_long = client.post(
        f"{URL}/{handed_over.id}/rating", {"satisfaction": 2, "comment": "a" * 11}
    )
    assert too_long.status_code == 422
    assert too_long.json()["details"][0]["field"] == "comment"
    assert too_long.json()["details"][0]["code"] == "too_long"
    handed_over.refresh_from_db()
    assert handed_over.satisfaction is None
    ok = client.post(f"{URL}/{handed_over.id}/rating", {"satisfaction": 2, "comment": "a" * 10})
    assert ok.status_code == 200


@pytest.mark.django_db
def test_rating_refuses_other_fields(handed_over: Dossier) -> None:
    response = client_for(handed_over.applicant).post(
        f"{URL}/{handed_over.id}/rating", {"satisfaction": 2, "status": 9}
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["code"] == "extra_forbidden"


@pytest.mark.django_db
def test_rating_comment_with_nul_is_refused(handed_over: Dossier) -> None:
    response = client_for(handed_over.applicant).post(
        f"{URL}/{handed_over.id}/rating", {"satisfaction": 2, "comment": "a\u0000b"}
    )
    assert response.status_code == 422
    [detail] = response.json()["details"]
    assert (detail["field"], detail["code"]) == ("comment", "nul_character")
    handed_over.refresh_from_db()
    assert handed_over.satisfaction is None
