"""Every dossier route of this module, for every kind of caller.

The dossier belongs to an organisation: its applicant (owner) and another member
may use it; a member of another organisation, a stranger get 404 (never 403: no
existence leak), and an anonymous caller gets 401. Nothing changes for those refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auth.models import Membership, User
from dossiers.models import Dossier, DossierEvent, Procedure
from tests.conftest import ApiClient, make_user
from tests.dossiers.conftest import VALID_FORM, attach, client_for
from tests.factories import make_dossier, make_organisation

URL = "/api/v1/dossiers"


def draft(procedure: Procedure, owner: User, organisation: Any) -> Dossier:
    dossier = make_dossier(owner, procedure, organisation=organisation, form_data=VALID_FORM)
    attach(dossier, "doc-1", 2)
    return dossier


def handed_over(procedure: Procedure, owner: User, organisation: Any) -> Dossier:
    return make_dossier(owner, procedure, organisation=organisation, status=10)


# route name -> (how to build the dossier, how to call, status when allowed)
ROUTES: dict[str, tuple[Callable[..., Dossier], Callable[[ApiClient, Dossier], Any], int]] = {
    "read": (draft, lambda c, d: c.get(f"{URL}/{d.id}"), 200),
    "update": (draft, lambda c, d: c.patch(f"{URL}/{d.id}", {"form": {"copies": 3}}), 200),
    "delete": (draft, lambda c, d: c.delete(f"{URL}/{d.id}"), 204),
    "submit": (draft, lambda c, d: c.post(f"{URL}/{d.id}/submit"), 200),
    "rate": (handed_over, lambda c, d: c.post(f"{URL}/{d.id}/rating", {"satisfaction": 1}), 200),
}
ROLES = {
    "owner": 200,
    "org_member": 200,
    "other_org_member": 404,
    "stranger": 404,
    "anonymous": 401,
}


def snapshot(dossier_id: Any) -> tuple:
    row = Dossier.objects.filter(pk=dossier_id).values_list(
        "status", "version", "form_data", "code", "satisfaction"
    )
    return (*row, DossierEvent.objects.filter(dossier_id=dossier_id).count())


@pytest.mark.django_db
@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("role", list(ROLES))
def test_access_matrix(procedure: Procedure, route: str, role: str) -> None:
    owner, member, outsider, stranger = make_user(), make_user(), make_user(), make_user()
    organisation = make_organisation(owner)
    Membership.objects.create(organisation=organisation, user=member)
    make_organisation(outsider)
    build, call, allowed_status = ROUTES[route]
    dossier = build(procedure, owner, organisation)
    callers = {
        "owner": owner,
        "org_member": member,
        "other_org_member": outsider,
        "stranger": stranger,
    }
    client = client_for(callers[role]) if role in callers else ApiClient()
    before = snapshot(dossier.id)

    response = call(client, dossier)

    expected = allowed_status if ROLES[role] == 200 else ROLES[role]
    assert response.status_code == expected, response
    if expected >= 400:
        assert response.json()["code"] == {401: "not_authenticated", 404: "not_found"}[expected]
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
