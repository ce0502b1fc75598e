"""Organisations verified against the business registry (fake registry over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from auth.models import Membership, Organisation, User
from fakes.business_registry import FakeBusinessRegistry, demo_enterprise
from fakes.identity_provider import FakeIdentityProvider
from tests.accounts.national import national_callback
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

ORGS = "/api/v1/organisations"
TAX_CODE = demo_enterprise()["enterprise_code"]


def client(user: User) -> ApiClient:
    _, tokens = sign_in(user)
    return ApiClient(token=tokens.access_token)


def create(api: ApiClient, tax_code: str = TAX_CODE) -> dict[str, Any]:
    response = api.post(ORGS, {"tax_code": tax_code, "name": "An Phú"})
    assert response.status_code == 201, response
    return dict(response.json())


def representative(idp: FakeIdentityProvider) -> User:
    """The legal representative signs in with VNeID: their citizen ID is verified."""
    national_callback(ApiClient())
    return User.objects.get(citizen_id=demo_enterprise()["legal_representatives"][0]["citizen_id"])


def test_an_organisation_is_unverified_in_every_answer_until_checked(
    registry: FakeBusinessRegistry,
) -> None:
    creator = make_user()
    api = client(creator)
    created = create(api)
    api.post(f"{ORGS}/{created['id']}/invitations", {"phone": "0987000111", "role": "member"})
    invitee = make_user("+84987000111")

    listed = api.get(ORGS).json()["items"][0]
    shown = api.get(f"{ORGS}/{created['id']}").json()
    invitation = client(invitee).get(f"{ORGS}/invitations").json()["items"][0]

    assert (created["verified"], created["verified_at"]) == (False, None)
    assert listed["verified"] is False
    assert shown["verified"] is False
    assert invitation["organisation"]["verified"] is False


def test_the_registry_s_legal_representative_becomes_the_owner(
    registry: FakeBusinessRegistry, idp: FakeIdentityProvider
) -> None:
    creator = make_user()
    api = client(creator)
    created = create(api)
    boss = representative(idp)

    response = api.post(f"{ORGS}/{created['id']}/verify")

    assert response.status_code == 200, response
    body = response.json()
    assert body["verified"] is True
    assert body["name"] == demo_enterprise()["name"]
    assert body["my_role"] == "admin"
    organisation = Organisation.objects.get(pk=created["id"])
    assert organisation.registry_name == demo_enterprise()["name"]
    roles = dict(Membership.objects.filter(organisation=organisation).values_list("user", "role"))
    assert roles == {creator.pk: "admin", boss.pk: "owner"}


def test_a_self_declared_citizen_id_does_not_make_an_owner(
    registry: FakeBusinessRegistry,
) -> None:
    make_user(citizen_id=demo_enterprise()["legal_representatives"][0]["citizen_id"])
    creator = make_user()
    api = client(creator)
    created = create(api)

    response = api.post(f"{ORGS}/{created['id']}/verify")

    assert response.status_code == 409
    assert response.json()["code"] == "representative_not_verified"
    organisation = Organisation.objects.get(pk=created["id"])
    assert (organisation.verified_at, organisation.name) == (None, "An Phú")
    assert Membership.objects.get(organisation=organisation).role == "owner"


def test_a_tax_code_the_registry_does_not_know_stays_unverified(
    registry: FakeBusinessRegistry,
) -> None:
    api = client(make_user())
    created = create(api, "0100233583")

    response = api.post(f"{ORGS}/{created['id']}/verify")

    assert response.status_code == 409
    assert response.json()["code"] == "tax_code_not_registered"
    assert Organisation.objects.get(pk=created["id"]).verified_at is None


def test_a_dissolved_enterprise_stays_unverified(registry: FakeBusinessRegistry) -> None:
    registry.register({**demo_enterprise(), "status": "dissolved"})
    api = client(make_user())
    created = create(api)

    response = api.post(f"{ORGS}/{created['id']}/verify")

    assert response.status_code == 409
    assert response.json()["code"] == "tax_code_not_registered"


def test_the_registry_down_is_a_503(registry: FakeBusinessRegistry) -> None:
    registry.mode = "down"
    api = client(make_user())
    created = create(api)

    response = api.post(f"{ORGS}/{created['id']}/verify")

    assert response.status_code == 503
    assert response.json()["code"] == "business_registry_unavailable"
    assert Organisation.objects.get(pk=created["id"]).verified_at is None


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "drop"},  # the connection closes without an answer
        {"kind": "error", "status": 429, "code": "rate_limited"},  # {"error": "rate_limited"}
        {"kind": "error", "status": 502},  # a gateway's HTML error page
    ],
)
def test_a_registry_fault_is_a_503_and_changes_nothing(
    registry: FakeBusinessRegistry, fault: dict[str, Any]
) -> None:
    api = client(make_user())
    created = create(api)
    registry.fail_next(**fault)

    response = api.post(f"{ORGS}/{created['id']}/verify")

    assert response.status_code == 503
    assert response.json()["code"] == "business_registry_unavailable"
    assert registry.paths() == [f"GET /enterprises/{TAX_CODE}"]
    organisation = Organisation.objects.get(pk=created["id"])
    assert (organisation.verified_at, organisation.name) == (None, "An Phú")
    assert api.post(f"{ORGS}/{created['id']}/verify").status_code == 409  # next call answered


def test_only_managers_verify_and_strangers_see_nothing(registry: FakeBusinessRegistry) -> None:
    owner = make_user()
    created = create(client(owner))
    member = make_user()
    Membership.objects.create(organisation_id=created["id"], user=member, role="member")

    as_member = client(member).post(f"{ORGS}/{created['id']}/verify")
    as_stranger = client(make_user()).post(f"{ORGS}/{created['id']}/verify")

    assert as_member.status_code == 403
    assert as_stranger.status_code == 404
    assert registry.requests == []  # the registry was never asked
