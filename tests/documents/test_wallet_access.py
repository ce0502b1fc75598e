"""Who may do what with wallet papers: every route, every relation (404 for strangers)."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from auth.models import Membership
from documents.models import WalletItem
from dossiers.models import DocumentType, Dossier
from tests.conftest import ApiClient, make_user, sign_in
from tests.dossiers.attachments import samples
from tests.dossiers.conftest import RICH_FORM, VALID_FORM
from tests.factories import make_dossier, make_organisation, make_procedure

pytestmark = pytest.mark.django_db


def client(user) -> ApiClient:
    return ApiClient(token=sign_in(user)[1].access_token)


@pytest.fixture
def world(db):
    cccd = DocumentType.objects.create(code="cccd", name="Căn cước công dân")
    holder, stranger = make_user(), make_user()
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    organisation = make_organisation(owner)
    Membership.objects.create(organisation=organisation, user=admin, role=Membership.Role.ADMIN)
    Membership.objects.create(organisation=organisation, user=member, role=Membership.Role.MEMBER)
    make_organisation(outsider)  # a member of another organisation

    def item(**owner_fields) -> WalletItem:
        return WalletItem.objects.create(
            source="upload", title="CCCD", kind="pdf", file="wallet/xx/" + str(id(owner_fields)),
            content_type="application/pdf", size=10, sha256="0" * 64, document_type=cccd,
            **owner_fields,
        )  # fmt: skip

    personal = item(user=holder)
    shared = item(organisation=organisation)
    procedure = make_procedure(form_spec=RICH_FORM)
    procedure.documents.get(code="doc-1").accepted_types.add(cccd)
    return {
        "users": {
            "holder": holder, "stranger": stranger, "owner": owner,
            "admin": admin, "member": member, "outsider": outsider,
        },
        "personal": personal, "shared": shared, "organisation": organisation,
        "procedure": procedure,
    }  # fmt: skip


# (route, item) -> expected status per user
READ = {"holder": 200, "stranger": 404, "owner": 404, "admin": 404, "member": 404, "outsider": 404}
READ_SHARED = {
    "holder": 404,
    "stranger": 404,
    "owner": 200,
    "admin": 200,
    "member": 200,
    "outsider": 404,
}
DELETE_SHARED = {
    "holder": 404,
    "stranger": 404,
    "owner": 204,
    "admin": 204,
    "member": 403,
    "outsider": 404,
}
DELETE = {**READ, "holder": 204}


@pytest.mark.parametrize("who", list(READ))
@pytest.mark.parametrize(
    ("which", "method", "suffix", "expected"),
    [
        ("personal", "get", "", READ),
        ("personal", "get", "/file", READ),
        ("personal", "delete", "", DELETE),
        ("shared", "get", "", READ_SHARED),
        ("shared", "get", "/file", READ_SHARED),
        ("shared", "delete", "", DELETE_SHARED),
    ],
)
def test_item_routes(world, settings, tmp_path, who, which, method, suffix, expected) -> None:
    item = world[which]
    (tmp_path / "media" / "wallet" / "xx").mkdir(parents=True, exist_ok=True)
    (tmp_path / "media" / item.file).write_bytes(b"%PDF-1.4 test")
    response = getattr(client(world["users"][who]), method)(
        f"/api/v1/wallet/items/{item.pk}{suffix}"
    )
    assert response.status_code == expected[who], (who, which, method, suffix)
    gone = not WalletItem.objects.filter(pk=item.pk).exists()
    assert gone == (expected[who] == 204)


@pytest.mark.parametrize("who", list(READ))
def test_listing_an_organisations_wallet(world, who) -> None:
    url = f"/api/v1/wallet/items?organisation_id={world['organisation'].pk}"
    response = client(world["users"][who]).get(url)
    assert response.status_code == READ_SHARED[who]
    if response.status_code == 200:
        assert [i["id"] for i in response.json()["items"]] == [str(world["shared"].pk)]


@pytest.mark.parametrize("who", list(READ))
def test_own_list_shows_only_own_items(world, who) -> None:
    items = client(world["users"][who]).get("/api/v1/wallet/items").json()["items"]
    expected = [str(world["personal"].pk)] if who == "holder" else []
    assert [i["id"] for i in items] == expected


@pytest.mark.parametrize(
    ("who", "expected"),
    [("owner", 201), ("admin", 201), ("member", 403), ("outsider", 404), ("holder", 404)],
)
def test_adding_to_an_organisations_wallet(world, who, expected) -> None:
    user = world["users"][who]
    response = client(user).client.post(
        "/api/v1/wallet/items",
        {"file": ContentFile(samples.jpeg_bytes(), name="a.jpg"),
         "organisation_id": str(world["organisation"].pk)},
        headers={"Authorization": f"Bearer {sign_in(user)[1].access_token}"},
    )  # fmt: skip
    assert response.status_code == expected
    added = WalletItem.objects.filter(organisation=world["organisation"]).count() - 1
    assert added == (1 if expected == 201 else 0)


@pytest.mark.parametrize("who", list(READ))
@pytest.mark.parametrize("which", ["personal", "shared"])
def test_attaching_from_the_wallet(world, who, which) -> None:
    user = world["users"][who]
    organisation = world["organisation"] if which == "shared" else None
    dossier = make_dossier(
        user, world["procedure"], form_data=VALID_FORM, organisation=organisation
    )
    response = client(user).post(
        f"/api/v1/dossiers/{dossier.pk}/wallet-attachments",
        {"wallet_item_id": str(world[which].pk), "document_code": "doc-1"},
    )
    allowed = (READ if which == "personal" else READ_SHARED)[who] == 200
    assert response.status_code == (201 if allowed else 404), response
    assert dossier.attachments.count() == (1 if allowed else 0)


def test_an_organisations_paper_serves_only_its_own_dossiers(world) -> None:
    owner = world["users"]["owner"]
    personal_dossier = make_dossier(owner, world["procedure"], form_data=VALID_FORM)
    response = client(owner).post(
        f"/api/v1/dossiers/{personal_dossier.pk}/wallet-attachments",
        {"wallet_item_id": str(world["shared"].pk), "document_code": "doc-1"},
    )
    assert response.status_code == 404
    assert personal_dossier.attachments.count() == 0


@pytest.mark.parametrize("who", ["stranger", "member"])
def test_offers_of_someone_elses_dossier_are_not_found(world, who) -> None:
    dossier = make_dossier(world["users"]["holder"], world["procedure"], form_data=VALID_FORM)
    response = client(world["users"][who]).get(f"/api/v1/dossiers/{dossier.pk}/wallet-offers")
    assert response.status_code == 404


def test_anonymous_gets_401_everywhere(world) -> None:
    api = ApiClient()
    item = world["personal"].pk
    for method, url in [
        ("get", "/api/v1/wallet/items"),
        ("get", f"/api/v1/wallet/items/{item}"),
        ("get", f"/api/v1/wallet/items/{item}/file"),
        ("delete", f"/api/v1/wallet/items/{item}"),
        ("get", "/api/v1/wallet/document-types"),
    ]:
        assert getattr(api, method)(url).status_code == 401, url


@pytest.mark.parametrize("submitted", [False, True])
def test_a_replayed_attach_from_the_wallet_says_whether_it_can_be_removed_now(
    world, submitted
) -> None:
    holder = world["users"]["holder"]
    dossier = make_dossier(holder, world["procedure"], form_data=VALID_FORM)
    api = client(holder)
    url = f"/api/v1/dossiers/{dossier.pk}/wallet-attachments"
    body = {"wallet_item_id": str(world["personal"].pk), "document_code": "doc-1"}
    key = {"Idempotency-Key": "attach-from-wallet"}
    first = api.post(url, body, headers=key)
    assert (first.status_code, first.json()["can_remove"]) == (201, True)
    if submitted:
        Dossier.objects.filter(pk=dossier.pk).update(status=Dossier.Status.NEW)

    replay = api.post(url, body, headers=key)

    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == {**first.json(), "can_remove": not submitted}
