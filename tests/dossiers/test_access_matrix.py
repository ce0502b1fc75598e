"""Every dossier route of this module, for every kind of caller.

The dossier belongs to an organisation; its applicant is a plain member. The applicant
and the organisation's owners and admins may use every route. The organisation's other
members may read the dossier and fill the draft in, but not delete the draft, submit or
withdraw it, send the supplement or rate the service in the applicant's name: 403
`not_applicant` (mobile_api_docs/lifecycle.md). A member of
another organisation and a stranger get 404 (never 403: no existence leak), and an
anonymous caller gets 401. Nothing changes for those refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auth.models import User
from dossiers import lifecycle
from dossiers.models import Attachment, Dossier, DossierEvent, Procedure
from tests.conftest import ApiClient, make_user
from tests.dossiers.conftest import VALID_FORM, attach, client_for
from tests.factories import make_dossier, make_organisation, make_team

URL = "/api/v1/dossiers"


def draft(procedure: Procedure, applicant: User, organisation: Any) -> Dossier:
    dossier = make_dossier(applicant, procedure, organisation=organisation, form_data=VALID_FORM)
    attach(dossier, "doc-1", 2)
    return dossier


def submitted(procedure: Procedure, applicant: User, organisation: Any) -> Dossier:
    return make_dossier(applicant, procedure, organisation=organisation, status=1)


def supplement_requested(procedure: Procedure, applicant: User, organisation: Any) -> Dossier:
    dossier = make_dossier(applicant, procedure, organisation=organisation, status=4)
    lifecycle.request_supplement(
        dossier.pk,
        lifecycle.Actor.agency_system("T (ak_test)"),
        documents=[{"note": "Bản sao giấy phép"}],
        message="Bổ sung",
    )
    return dossier


def handed_over(procedure: Procedure, applicant: User, organisation: Any) -> Dossier:
    return make_dossier(applicant, procedure, organisation=organisation, status=10)


# route name -> (how to build the dossier, how to call, status when allowed, status for
# a plain member who is not the applicant)
ROUTES: dict[str, tuple[Callable[..., Dossier], Callable[[ApiClient, Dossier], Any], int, int]] = {
    "read": (draft, lambda c, d: c.get(f"{URL}/{d.id}"), 200, 200),
    "update": (draft, lambda c, d: c.patch(f"{URL}/{d.id}", {"form": {"copies": 3}}), 200, 200),
    "delete": (draft, lambda c, d: c.delete(f"{URL}/{d.id}"), 204, 403),
    "submit": (draft, lambda c, d: c.post(f"{URL}/{d.id}/submit"), 200, 403),
    "withdraw": (submitted, lambda c, d: c.post(f"{URL}/{d.id}/withdraw", {}), 200, 403),
    "supplement": (
        supplement_requested,
        lambda c, d: c.post(f"{URL}/{d.id}/supplement", {}),
        200,
        403,
    ),
    "rate": (
        handed_over,
        lambda c, d: c.post(f"{URL}/{d.id}/rating", {"satisfaction": 1}),
        200,
        403,
    ),
}
ROLES = ["applicant", "org_owner", "org_admin", "org_member", "other_org_member", "stranger"]
ROLES += ["anonymous"]
CODES = {401: "not_authenticated", 403: "not_applicant", 404: "not_found"}


def expected_status(route: str, role: str) -> int:
    _build, _call, allowed, for_plain_member = ROUTES[route]
    if role in ("applicant", "org_owner", "org_admin"):
        return allowed
    if role == "org_member":
        return for_plain_member
    return 401 if role == "anonymous" else 404


def snapshot(dossier_id: Any) -> tuple:
    row = Dossier.objects.filter(pk=dossier_id).values_list(
        "status", "version", "form_data", "code", "satisfaction"
    )
    return (
        *row,
        DossierEvent.objects.filter(dossier_id=dossier_id).count(),
        Attachment.objects.filter(dossier_id=dossier_id).count(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(procedure: Procedure, route: str, role: str) -> None:
    organisation, people = make_team("applicant", "owner", "admin", "member")
    outsider = make_user()
    make_organisation(outsider)
    build, call, _allowed, _for_plain_member = ROUTES[route]
    dossier = build(procedure, people["applicant"], organisation)
    callers = {
        "applicant": people["applicant"],
        "org_owner": people["owner"],
        "org_admin": people["admin"],
        "org_member": people["member"],
        "other_org_member": outsider,
        "stranger": make_user(),
    }
    client = client_for(callers[role]) if role in callers else ApiClient()
    before = snapshot(dossier.id)

    response = call(client, dossier)

    expected = expected_status(route, role)
    assert response.status_code == expected, response
    if expected >= 400:
        assert response.json()["code"] == CODES[expected]
        assert snapshot(dossier.id) == before


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["other_org_member", "stranger"])
def test_others_do_not_see_the_dossier_in_lists(procedure: Procedure, role: str) -> None:
    owner, outsider = make_user(), make_user()
    organisation = make_organisation(owner)
    make_organisation(outsider)
    make_dossier(owner, procedure, organisation=organisation)
    caller = outsider if role == "other_org_member" else make_user()
    assert client_for(caller).get(URL).json() == {"items": [], "next_cursor": None}


@pytest.mark.django_db
def test_anonymous_list_and_create_are_401(procedure: Procedure) -> None:
    assert ApiClient().get(URL).status_code == 401
    assert ApiClient().post(URL, {"procedure_id": procedure.id}).status_code == 401
    assert Dossier.objects.count() == 0


NOT_APPLICANT = {
    "vi": "Chỉ người nộp hồ sơ, chủ sở hữu và quản trị viên của tổ chức mới được làm việc này.",
    "en": "Only the dossier's applicant and the organisation's owners and administrators can "
    "do this.",
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_a_plain_member_is_told_who_may_in_the_request_language(
    procedure: Procedure, language: str
) -> None:
    organisation, people = make_team("applicant", "member")
    dossier = draft(procedure, people["applicant"], organisation)
    response = client_for(people["member"], language).post(f"{URL}/{dossier.id}/submit")
    assert response.status_code == 403
    assert response.json() == {
        "code": "not_applicant",
        "message": NOT_APPLICANT[language],
        "details": None,
    }
    assert Dossier.objects.get(pk=dossier.pk).status == Dossier.Status.DRAFT
