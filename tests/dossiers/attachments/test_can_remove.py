"""`can_remove` of an attachment: what the delete route would answer the caller, so
the app hides the "remove" button where a tap would get 403 `not_uploader` or 409
`dossier_locked`.

On an organisation's dossier: whoever attached a file, the dossier's applicant, and the
organisation's owners and admins may remove it while the dossier is a draft or a
supplement is requested; the organisation's other members may not.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from auth.models import Membership, User
from dossiers.catalogue import procedure_changed
from dossiers.models import Attachment, Dossier, Procedure, RequiredDocument
from tests.conftest import api_as
from tests.dossiers.attachments import samples
from tests.dossiers.attachments.conftest import citizen, upload_form
from tests.factories import make_dossier, make_organisation

pytestmark = pytest.mark.django_db

ROLES = {
    "owner": Membership.Role.OWNER,
    "admin": Membership.Role.ADMIN,
    "applicant": Membership.Role.MEMBER,
    "uploader": Membership.Role.MEMBER,
    "member": Membership.Role.MEMBER,
}

# Who sees `can_remove` true on whose file, while the dossier is editable.
MAY_REMOVE = {
    ("owner", "applicant's"): True,
    ("owner", "uploader's"): True,
    ("admin", "applicant's"): True,
    ("admin", "uploader's"): True,
    ("applicant", "applicant's"): True,
    ("applicant", "uploader's"): True,
    ("uploader", "applicant's"): False,
    ("uploader", "uploader's"): True,
    ("member", "applicant's"): False,
    ("member", "uploader's"): False,
}


class Team:
    """An organisation's draft (its applicant a plain member) with one file attached by
    the applicant and one by another plain member (the uploader)."""

    def __init__(self, procedure: Procedure) -> None:
        organisation = make_organisation()
        self.people: dict[str, User] = {}
        for name, role in ROLES.items():
            self.people[name] = citizen()
            Membership.objects.create(organisation=organisation, user=self.people[name], role=role)
        self.dossier = make_dossier(self.people["applicant"], procedure, organisation=organisation)
        self.files = {
            "applicant's": self._upload("applicant", samples.png_bytes((50, 50))),
            "uploader's": self._upload("uploader", samples.png_bytes((60, 40))),
        }

    def _upload(self, who: str, data: bytes) -> str:
        response = api_as(self.people[who]).post(self.base, data=upload_form(data))
        assert response.status_code == 201, response
        return str(response.json()["id"])

    @property
    def base(self) -> str:
        return f"/api/v1/dossiers/{self.dossier.pk}/attachments"

    def set_status(self, status: int) -> None:
        Dossier.objects.filter(pk=self.dossier.pk).update(status=status)


@pytest.fixture
def team(procedure: Procedure) -> Team:
    return Team(procedure)


def _listed(team: Team, who: str) -> dict[str, bool]:
    response = api_as(team.people[who]).get(team.base)
    assert response.status_code == 200, response
    by_id = {item["id"]: item["can_remove"] for item in response.json()["items"]}
    return {whose: by_id[file_id] for whose, file_id in team.files.items()}


def _got(team: Team, who: str) -> dict[str, bool]:
    client = api_as(team.people[who])
    return {
        whose: client.get(f"{team.base}/{file_id}").json()["can_remove"]
        for whose, file_id in team.files.items()
    }


def test_can_remove_says_who_may_remove_which_file(team: Team) -> None:
    expected = {who: {whose: MAY_REMOVE[(who, whose)] for whose in team.files} for who in ROLES}

    assert {who: _listed(team, who) for who in ROLES} == expected
    assert {who: _got(team, who) for who in ROLES} == expected


@pytest.mark.parametrize(
    ("status", "editable"),
    [
        (Dossier.Status.DRAFT, True),
        (Dossier.Status.SUPPLEMENT_REQUESTED, True),
        (Dossier.Status.NEW, False),
        (Dossier.Status.PROCESSING, False),
        (Dossier.Status.RESULT_READY, False),
    ],
)
def test_can_remove_is_false_for_everyone_once_files_are_locked(
    team: Team, status: int, editable: bool
) -> None:
    team.set_status(status)

    seen = {who: _listed(team, who) for who in ROLES}

    assert seen == {
        who: {whose: editable and MAY_REMOVE[(who, whose)] for whose in team.files} for who in ROLES
    }


@pytest.mark.parametrize("status", [Dossier.Status.SUPPLEMENT_REQUESTED, Dossier.Status.NEW])
@pytest.mark.parametrize("who", list(ROLES))
@pytest.mark.parametrize("whose", ["applicant's", "uploader's"])
def test_can_remove_is_what_the_delete_route_answers(
    team: Team, who: str, whose: str, status: int
) -> None:
    team.set_status(status)
    client = api_as(team.people[who])
    url = f"{team.base}/{team.files[whose]}"
    can_remove = client.get(url).json()["can_remove"]

    response = client.delete(url)

    assert (response.status_code == 204) is can_remove
    if not can_remove:
        assert response.json()["code"] in {"not_uploader", "dossier_locked"}
        assert Attachment.objects.filter(pk=team.files[whose]).exists()


def test_an_upload_answers_can_remove_for_the_uploader(team: Team) -> None:
    response = api_as(team.people["member"]).post(
        team.base, data=upload_form(samples.png_bytes((70, 30)))
    )
    again = api_as(team.people["member"]).post(
        team.base, data=upload_form(samples.png_bytes((70, 30)))
    )
    colleagues = api_as(team.people["member"]).post(
        team.base,
        data=upload_form(samples.png_bytes((50, 50))),  # the applicant's file
    )

    assert (response.status_code, response.json()["can_remove"]) == (201, True)
    assert (again.status_code, again.json()["can_remove"]) == (200, True)
    assert (colleagues.status_code, colleagues.json()["can_remove"]) == (200, False)


def _list_queries(team: Team, who: str) -> tuple[int, list[bool]]:
    client = api_as(team.people[who])
    client.get(team.base)  # warm: anything read once per process
    with CaptureQueriesContext(connection) as captured:
        response = client.get(team.base)
    assert response.status_code == 200, response
    return len(captured), [item["can_remove"] for item in response.json()["items"]]


@pytest.mark.parametrize("who", ["member", "admin", "applicant"])
def test_the_list_reads_the_callers_role_once_not_per_file(
    team: Team, procedure: Procedure, who: str
) -> None:
    queries_for_two, _ = _list_queries(team, who)
    RequiredDocument.objects.filter(procedure=procedure, code="doc-1").update(max_files=6)
    procedure_changed(procedure)
    uploader = api_as(team.people["uploader"])
    for n in range(4):
        more = uploader.post(team.base, data=upload_form(samples.png_bytes((80 + n, 40))))
        assert more.status_code == 201, more

    queries_for_six, seen = _list_queries(team, who)

    assert len(seen) == 6
    assert queries_for_six == queries_for_two
    # the session, the dossier, the caller's membership (none for the applicant: the
    # dossier says it), the page of files
    assert queries_for_six == (3 if who == "applicant" else 4)


# --- Replays ----------------------------------------------------------------------------------


@pytest.mark.parametrize("since", ["nothing", "submitted", "removed"])
def test_a_replayed_upload_says_whether_the_file_can_be_removed_now(team: Team, since: str) -> None:
    """A retry with the same Idempotency-Key replays the first answer, except `can_remove`:
    read again, so the replay never offers a removal the delete route would refuse."""
    client = api_as(team.people["uploader"])
    key = {"Idempotency-Key": f"upload-then-{since}"}
    source = samples.png_bytes((70, 30))
    first = client.post(team.base, data=upload_form(source), headers=key)
    assert (first.status_code, first.json()["can_remove"]) == (201, True)
    url = f"{team.base}/{first.json()['id']}"
    if since == "submitted":
        team.set_status(Dossier.Status.NEW)
    elif since == "removed":
        assert client.delete(url).status_code == 204

    replay = client.post(team.base, data=upload_form(source), headers=key)

    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.status_code == 201
    assert replay.json() == {**first.json(), "can_remove": since == "nothing"}
    if since == "submitted":
        # What the delete route answers, and nothing removed.
        assert client.delete(url).json()["code"] == "dossier_locked"
        assert Attachment.objects.filter(pk=first.json()["id"]).exists()


def test_a_replayed_upload_of_a_colleagues_file_follows_the_callers_role_now(team: Team) -> None:
    """The same bytes as the applicant's file: 200 with that file, which a plain member may
    not remove; once an admin, the replay says they may."""
    member = team.people["member"]
    client = api_as(member)
    key = {"Idempotency-Key": "colleagues-file"}
    first = client.post(team.base, data=upload_form(samples.png_bytes((50, 50))), headers=key)
    assert (first.status_code, first.json()["can_remove"]) == (200, False)
    Membership.objects.filter(user=member).update(role=Membership.Role.ADMIN)

    replay = client.post(team.base, data=upload_form(samples.png_bytes((50, 50))), headers=key)

    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (200, "true")
    assert replay.json() == {**first.json(), "can_remove": True}


def test_a_replayed_refusal_is_the_first_answer_unchanged(team: Team) -> None:
    """Only a 2xx answer names a file whose `can_remove` is read again: a kept refusal
    (415 here) replays as it was."""
    client = api_as(team.people["uploader"])
    key = {"Idempotency-Key": "not-a-photo"}
    text = b"plain text, not a photo"

    first = client.post(team.base, data=upload_form(text), headers=key)
    replay = client.post(team.base, data=upload_form(text), headers=key)

    assert first.status_code == 415, first
    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (415, "true")
    assert replay.content == first.content
