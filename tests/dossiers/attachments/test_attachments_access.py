"""Who may touch a dossier's attachments: every route, every kind of caller.

The applicant and members of the dossier's organisation may, except that a member
removes only what they attached themselves (403 `not_uploader` for a colleague's file;
the applicant and the organisation's owners and admins remove any); anyone else gets
404 (never 403: the dossier's existence does not leak); no token gets 401.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auth.models import Membership, User
from dossiers.models import Attachment, Dossier, Procedure
from tests.conftest import ApiClient, api_as
from tests.dossiers.attachments import samples
from tests.dossiers.attachments.conftest import (
    citizen,
    stored_files,
    upload_form,
)
from tests.factories import make_dossier, make_organisation

pytestmark = pytest.mark.django_db

Route = Callable[[ApiClient, Dossier, Attachment], Any]


def _base(dossier: Dossier) -> str:
    return f"/api/v1/dossiers/{dossier.pk}/attachments"


ROUTES: dict[str, tuple[Route, int]] = {
    "upload": (
        lambda c, d, a: c.post(_base(d), data=upload_form(samples.png_bytes((50, 50)))),
        201,
    ),
    "list": (lambda c, d, a: c.get(_base(d)), 200),
    "get": (lambda c, d, a: c.get(f"{_base(d)}/{a.pk}"), 200),
    "delete": (lambda c, d, a: c.delete(f"{_base(d)}/{a.pk}"), 204),
    "download": (lambda c, d, a: c.get(f"{_base(d)}/{a.pk}/download"), 200),
    "thumbnail": (lambda c, d, a: c.get(f"{_base(d)}/{a.pk}/thumbnail"), 200),
    "download-url": (lambda c, d, a: c.get(f"{_base(d)}/{a.pk}/download-url"), 200),
}


CODES = {401: "not_authenticated", 403: "not_uploader", 404: "not_found"}
NOT_UPLOADER = {
    "vi": "Chỉ người đính kèm tệp này, người nộp hồ sơ, chủ sở hữu và quản trị viên của tổ "
    "chức mới được gỡ tệp.",
    "en": "Only whoever attached this file, the dossier's applicant and the organisation's "
    "owners and administrators can remove it.",
}


@pytest.fixture
def org_dossier(procedure: Procedure) -> tuple[Dossier, User, User]:
    """An organisation's dossier, its applicant and another member of the organisation."""
    applicant = citizen()
    member = citizen()
    organisation = make_organisation(applicant)
    Membership.objects.create(organisation=organisation, user=member, role=Membership.Role.MEMBER)
    return make_dossier(applicant, procedure, organisation=organisation), applicant, member


@pytest.fixture
def attachment(org_dossier: tuple[Dossier, User, User]) -> Attachment:
    dossier, applicant, _ = org_dossier
    response = api_as(applicant).post(_base(dossier), data=upload_form(samples.jpeg_bytes()))
    assert response.status_code == 201, response
    return Attachment.objects.get(pk=response.json()["id"])


def _client(who: str, org_dossier: tuple[Dossier, User, User]) -> ApiClient:
    _, applicant, member = org_dossier
    if who == "applicant":
        return api_as(applicant)
    if who == "org member":
        return api_as(member)
    if who == "stranger":
        return api_as(citizen())
    return ApiClient()


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize(
    ("who", "allowed", "denied_status"),
    [
        ("applicant", True, None),
        ("org member", True, None),
        ("stranger", False, 404),
        ("anonymous", False, 401),
    ],
)
def test_attachment_access_matrix(
    org_dossier: tuple[Dossier, User, User],
    attachment: Attachment,
    media_root: Path,
    route: str,
    who: str,
    allowed: bool,
    denied_status: int | None,
) -> None:
    dossier = org_dossier[0]
    call, ok_status = ROUTES[route]
    files_before = stored_files(media_root)

    response = call(_client(who, org_dossier), dossier, attachment)

    if who == "org member" and route == "delete":  # the applicant's file, not theirs
        allowed, denied_status = False, 403
    if allowed:
        assert response.status_code == ok_status, response
        return
    assert response.status_code == denied_status, response
    assert response.json()["code"] == CODES[denied_status]
    # Nothing changed: the attachment is still there, no file was added or removed.
    assert list(Attachment.objects.filter(dossier=dossier)) == [attachment]
    assert stored_files(media_root) == files_before


def test_strangers_404_does_not_reveal_whether_the_dossier_exists(
    org_dossier: tuple[Dossier, User, User], attachment: Attachment
) -> None:
    stranger = api_as(citizen())
    dossier = org_dossier[0]
    missing = "/api/v1/dossiers/00000000-0000-0000-0000-000000000000/attachments"

    real = stranger.get(f"{_base(dossier)}/{attachment.pk}/download")
    fake = stranger.get(f"{missing}/{attachment.pk}/download")

    assert (real.status_code, real.json()) == (fake.status_code, fake.json())


def test_a_download_link_stops_working_once_its_user_no_longer_sees_the_dossier(
    org_dossier: tuple[Dossier, User, User], attachment: Attachment
) -> None:
    dossier, applicant, member = org_dossier
    member_link = api_as(member).get(f"{_base(dossier)}/{attachment.pk}/download-url").json()
    applicant_link = api_as(applicant).get(f"{_base(dossier)}/{attachment.pk}/download-url").json()
    anonymous = ApiClient()
    assert anonymous.get(member_link["url"]).status_code == 200

    Membership.objects.filter(user=member).delete()  # left the organisation

    assert anonymous.get(member_link["url"]).status_code == 404
    # The link of someone who still sees the dossier keeps working.
    assert anonymous.get(applicant_link["url"]).status_code == 200


def test_a_download_link_of_a_disabled_account_is_404(
    org_dossier: tuple[Dossier, User, User], attachment: Attachment
) -> None:
    dossier, applicant, _ = org_dossier
    link = api_as(applicant).get(f"{_base(dossier)}/{attachment.pk}/download-url").json()
    User.objects.filter(pk=applicant.pk).update(is_active=False)
    assert ApiClient().get(link["url"]).status_code == 404


@pytest.mark.parametrize("language", ["vi", "en"])
def test_a_plain_member_cannot_remove_a_colleagues_file(
    org_dossier: tuple[Dossier, User, User],
    attachment: Attachment,
    media_root: Path,
    language: str,
) -> None:
    dossier, _applicant, member = org_dossier
    version = Dossier.objects.get(pk=dossier.pk).version
    files_before = stored_files(media_root)
    client = ApiClient(token=api_as(member).token, language=language)

    response = client.delete(f"{_base(dossier)}/{attachment.pk}")

    assert response.status_code == 403
    assert response.json() == {
        "code": "not_uploader",
        "message": NOT_UPLOADER[language],
        "details": None,
    }
    assert list(Attachment.objects.filter(dossier=dossier)) == [attachment]
    assert stored_files(media_root) == files_before
    assert Dossier.objects.get(pk=dossier.pk).version == version


def test_a_plain_member_removes_what_they_attached_themselves(
    org_dossier: tuple[Dossier, User, User], attachment: Attachment, media_root: Path
) -> None:
    dossier, _applicant, member = org_dossier
    mine = api_as(member).post(_base(dossier), data=upload_form(samples.png_bytes((60, 40))))
    assert mine.status_code == 201, mine

    response = api_as(member).delete(f"{_base(dossier)}/{mine.json()['id']}")

    assert response.status_code == 204
    assert list(Attachment.objects.filter(dossier=dossier)) == [attachment]


@pytest.mark.parametrize("who", ["applicant", "owner", "admin"])
def test_the_applicant_owners_and_admins_remove_a_members_file(
    org_dossier: tuple[Dossier, User, User], attachment: Attachment, media_root: Path, who: str
) -> None:
    dossier, applicant, member = org_dossier
    theirs = api_as(member).post(_base(dossier), data=upload_form(samples.png_bytes((60, 40))))
    assert theirs.status_code == 201, theirs
    remover = applicant
    if who != "applicant":
        remover = citizen()
        role = Membership.Role.OWNER if who == "owner" else Membership.Role.ADMIN
        Membership.objects.create(organisation_id=dossier.organisation_id, user=remover, role=role)

    response = api_as(remover).delete(f"{_base(dossier)}/{theirs.json()['id']}")

    assert response.status_code == 204
    assert list(Attachment.objects.filter(dossier=dossier)) == [attachment]
