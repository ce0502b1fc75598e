"""The agencies' pull feed: own changed dossiers in keyset order, short-lived file links."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from typing import Any
from unittest import mock

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from backend.pagination import cursor_values, encode_cursor
from backend.times import ApiJSONRenderer, rfc3339
from dossiers.agency.api import FeedOut, file_token
from dossiers.models import Agency, Attachment, Dossier
from tests.conftest import ApiClient, make_user
from tests.dossiers.conftest import AgencyClient
from tests.dossiers.conftest import attach as attachment_rows
from tests.factories import make_agency, make_dossier, make_organisation, make_procedure

pytestmark = pytest.mark.django_db
S = Dossier.Status
PAPER = b"%PDF-1.4 the applicant's paper"


@pytest.fixture(autouse=True)
def _no_settle(settings) -> None:
    settings.AGENCY_FEED_SETTLE_SECONDS = 0


def as_the_schema_writes_it(content: bytes) -> bytes:
    """The page validated by FeedOut and written by django-ninja's own response step:
    the route writes its body itself, and must write exactly this."""
    page = FeedOut.model_validate_json(content)
    return ApiJSONRenderer().render(None, page.model_dump(), response_status=200).encode()  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _every_page_is_what_its_schema_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every feed page of these tests is held to its documented schema, byte for byte."""
    request = AgencyClient.request

    def checked(self: AgencyClient, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        response = request(self, method, path, *args, **kwargs)
        if path.startswith("/api/v1/agency/feed") and response.status_code == 200:
            assert response.headers["Content-Type"] == "application/json; charset=utf-8"
            assert response.content == as_the_schema_writes_it(response.content)
        return response

    monkeypatch.setattr(AgencyClient, "request", checked)


def dossier_of(agency: Agency, status: int = S.NEW, **extra: object) -> Dossier:
    return make_dossier(
        make_user(password=None, full_name="Nguyễn Văn An"),
        make_procedure(agency),
        status=status,
        form_data={"full_name": "Nguyễn Văn An", "birth_date": "1990-05-01"},
        **extra,
    )


def attach(dossier: Dossier) -> Attachment:
    return Attachment.objects.create(
        dossier=dossier,
        document_code="doc-1",
        kind=Attachment.Kind.PDF,
        file=ContentFile(PAPER, name="x"),
        content_type="application/pdf",
        size=len(PAPER),
        sha256=hashlib.sha256(PAPER).hexdigest(),
        original_name="cccd.pdf",
        uploaded_by=dossier.applicant,
    )


def test_feed_lists_own_submitted_dossiers_with_form_data_and_attachments(
    agency: Agency, agency_client: AgencyClient
) -> None:
    first = dossier_of(agency)
    attachment = attach(first)
    second = dossier_of(agency, status=S.PROCESSING, organisation=make_organisation())
    dossier_of(agency, status=S.DRAFT)
    dossier_of(make_agency())
    response = agency_client.get("/api/v1/agency/feed")
    assert response.status_code == 200, response
    body = response.json()
    assert [item["id"] for item in body["items"]] == [str(first.pk), str(second.pk)]
    assert body["has_more"] is False
    item = body["items"][0]
    assert item["code"] == first.code
    assert item["form_data"] == {"full_name": "Nguyễn Văn An", "birth_date": "1990-05-01"}
    assert item["applicant"]["full_name"] == "Nguyễn Văn An"
    assert item["organisation"] is None
    assert body["items"][1]["organisation"]["tax_code"] == second.organisation.tax_code
    assert [a["id"] for a in item["attachments"]] == [str(attachment.pk)]
    link = item["attachments"][0]["download_url"]
    assert link.startswith("http://testserver/api/v1/agency/files/")
    download = ApiClient().get(link.removeprefix("http://testserver"))
    assert download.status_code == 200
    assert b"".join(download.raw.streaming_content) == PAPER
    assert 'filename="cccd.pdf"' in download.headers["Content-Disposition"]


def test_feed_resumes_after_its_cursor_and_shows_changed_dossiers_again(
    agency: Agency, agency_client: AgencyClient
) -> None:
    a, b, c = dossier_of(agency), dossier_of(agency), dossier_of(agency)
    page = agency_client.get("/api/v1/agency/feed?limit=2").json()
    assert [item["id"] for item in page["items"]] == [str(a.pk), str(b.pk)]
    assert page["has_more"] is True
    page2 = agency_client.get(f"/api/v1/agency/feed?limit=2&cursor={page['next_cursor']}").json()
    assert [item["id"] for item in page2["items"]] == [str(c.pk)]
    assert page2["has_more"] is False
    cursor = page2["next_cursor"]
    empty = agency_client.get(f"/api/v1/agency/feed?cursor={cursor}").json()
    assert empty["items"] == []
    assert empty["next_cursor"] == cursor  # the position is kept, never lost
    # A change (here, the citizen withdrawing) brings the dossier back after the cursor.
    from dossiers import lifecycle

    lifecycle.withdraw(a.pk, lifecycle.Actor.citizen(a.applicant))
    changed = agency_client.get(f"/api/v1/agency/feed?cursor={cursor}").json()
    assert [(item["id"], item["status"]) for item in changed["items"]] == [(str(a.pk), 7)]


def test_feed_holds_back_changes_younger_than_the_settle_time(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    settings.AGENCY_FEED_SETTLE_SECONDS = 3600
    held = dossier_of(agency)
    body = agency_client.get("/api/v1/agency/feed").json()
    assert body["items"] == []
    assert body["next_cursor"] != ""  # always set: the feed's beginning
    settings.AGENCY_FEED_SETTLE_SECONDS = 0
    [item] = agency_client.get(f"/api/v1/agency/feed?cursor={body['next_cursor']}").json()["items"]
    assert item["id"] == str(held.pk)


def test_feed_refuses_a_forged_cursor(agency_client: AgencyClient) -> None:
    response = agency_client.get("/api/v1/agency/feed?cursor=bm90LWEtY3Vyc29y")
    assert response.status_code == 422
    assert response.json()["details"][0]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "values",
    [
        ["2026-03-10T08:00:00+07:00", "not-a-uuid"],
        ["yesterday", "0b6f6f2e-5d5b-4c8e-9a51-0d6f7e3f9a10"],
        ["2026-03-10T08:00:00", "0b6f6f2e-5d5b-4c8e-9a51-0d6f7e3f9a10"],  # no time zone
        [1, 2],
    ],
)
def test_feed_refuses_a_well_encoded_cursor_with_wrong_values(
    agency_client: AgencyClient, values: list
) -> None:
    response = agency_client.get(f"/api/v1/agency/feed?cursor={encode_cursor(values)}")
    assert response.status_code == 422
    assert response.json()["details"][0]["code"] == "invalid_cursor"


def test_a_cursor_handed_out_by_the_former_feed_codec_still_resumes(
    agency: Agency, agency_client: AgencyClient
) -> None:
    first, second = dossier_of(agency), dossier_of(agency)
    # How the feed encoded its cursor before it used backend/pagination.py's codec.
    raw = json.dumps([first.updated_at.isoformat(), str(first.pk)], separators=(",", ":"))
    former = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    assert encode_cursor([first.updated_at, first.pk]) == former
    page = agency_client.get(f"/api/v1/agency/feed?cursor={former}").json()
    assert [item["id"] for item in page["items"]] == [str(second.pk)]


def test_feed_needs_a_signature(api: ApiClient) -> None:
    assert api.get("/api/v1/agency/feed").status_code == 401


@pytest.mark.parametrize(("age", "expected"), [(300, 200), (301, 410)])
def test_file_links_expire(
    agency: Agency, agency_client: AgencyClient, age: int, expected: int
) -> None:
    attach(dossier_of(agency))
    issued = float(int(time.time()))
    with mock.patch("django.core.signing.time.time", return_value=issued):
        link = agency_client.get("/api/v1/agency/feed").json()["items"][0]["attachments"][0]
    path = link["download_url"].removeprefix("http://testserver")
    with mock.patch("django.core.signing.time.time", return_value=issued + age):
        response = ApiClient().get(path)
    assert response.status_code == expected
    if expected == 410:
        assert response.json()["code"] == "link_expired"


def test_links_expire_at_is_when_the_pages_links_stop_opening(
    agency: Agency, agency_client: AgencyClient
) -> None:
    attach(dossier_of(agency))
    asked = time.time()
    with mock.patch("django.core.signing.time.time", return_value=asked):
        page = agency_client.get("/api/v1/agency/feed").json()
    path = page["items"][0]["attachments"][0]["download_url"].removeprefix("http://testserver")
    until = dt.datetime.fromisoformat(page["links_expire_at"]).timestamp()
    assert asked + 299 < until <= asked + 300  # the TTL from the page's whole second
    with mock.patch("django.core.signing.time.time", return_value=until):
        assert ApiClient().get(path).status_code == 200
    with mock.patch("django.core.signing.time.time", return_value=until + 0.001):
        assert ApiClient().get(path).status_code == 410


def test_a_pages_links_are_file_tokens_signed_without_the_generic_steps(
    agency: Agency, agency_client: AgencyClient
) -> None:
    # Up to 500 links a page: each is its grant's JSON signed as `signing.dumps` signs
    # it, without `sign_object`'s serializer and compression test per link.
    papers = attachment_rows(dossier_of(agency), "doc-1", 3)
    issued = float(int(time.time()))
    with (
        mock.patch("django.core.signing.time.time", return_value=issued),
        mock.patch.object(signing.Signer, "sign_object", side_effect=AssertionError("generic")),
    ):
        [item] = agency_client.get("/api/v1/agency/feed").json()["items"]
    with mock.patch("django.core.signing.time.time", return_value=issued):
        tokens = {str(paper.pk): file_token(agency, paper) for paper in papers}
    assert {paper["id"]: paper["download_url"] for paper in item["attachments"]} == {
        pk: f"http://testserver/api/v1/agency/files/{token}" for pk, token in tokens.items()
    }


def test_tampered_file_link_is_not_found(agency: Agency, agency_client: AgencyClient) -> None:
    attach(dossier_of(agency))
    link = agency_client.get("/api/v1/agency/feed").json()["items"][0]["attachments"][0]
    path = link["download_url"].removeprefix("http://testserver")
    response = ApiClient().get(path[:-3] + "abc")
    assert response.status_code == 404


def test_a_feed_page_costs_the_same_queries_whatever_its_dossiers_and_papers(
    agency: Agency, agency_client: AgencyClient
) -> None:
    def queries_of_a_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert agency_client.get("/api/v1/agency/feed").status_code == 200
        return len(captured.captured_queries)

    dossier_of(agency)
    small = queries_of_a_page()
    for _ in range(6):
        dossier = dossier_of(agency, organisation=make_organisation())
        attachment_rows(dossier, "doc-1", 3)
    assert queries_of_a_page() == small


def test_a_dossiers_papers_come_by_document_then_upload_time(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = dossier_of(agency)
    [later_b] = attachment_rows(dossier, "doc-b")
    [first_a] = attachment_rows(dossier, "doc-a")
    [second_b] = attachment_rows(dossier, "doc-b")
    Attachment.objects.filter(pk=later_b.pk).update(
        created_at=second_b.created_at.replace(year=2030)
    )

    [item] = agency_client.get("/api/v1/agency/feed").json()["items"]

    assert [a["id"] for a in item["attachments"]] == [
        str(first_a.pk),
        str(second_b.pk),
        str(later_b.pk),
    ]


@pytest.mark.parametrize("language", ["vi", "en"])
def test_a_full_feed_item_is_written_as_its_schema_says(
    agency: Agency, agency_client: AgencyClient, language: str
) -> None:
    moment = dt.datetime(2026, 3, 10, 8, 0, 0, 999999, tzinfo=dt.UTC)
    full = dossier_of(
        agency,
        status=S.PROCESSING,
        organisation=make_organisation(),
        submitted_at=moment,
        accepted_at=moment + dt.timedelta(hours=1),
        appointment_at=moment + dt.timedelta(days=5),
        original_appointment_at=moment + dt.timedelta(days=4),
        paused_at=moment + dt.timedelta(days=1, microseconds=1),
        overdue_at=moment + dt.timedelta(days=6),
        finished_at=moment + dt.timedelta(days=7),
        handed_over_at=moment + dt.timedelta(days=8),
    )
    full.applicant.citizen_id = "001090012345"
    full.applicant.save(update_fields=["citizen_id"])
    [paper] = attachment_rows(full, "doc-1")
    bare = dossier_of(agency, status=S.NEW)
    agency_client.api.language = language

    body = agency_client.get("/api/v1/agency/feed").json()  # the fixture checks the bytes

    first, second = body["items"]
    assert (first["id"], second["id"]) == (str(full.pk), str(bare.pk))
    with translation.override(language):
        assert first["status_label"] == str(S.PROCESSING.label)
    assert first["status_label"] == {"vi": "Đang xử lý", "en": "Processing"}[language]
    assert first["submitted_at"] == "2026-03-10T08:00:00.999Z" == rfc3339(moment)
    assert first["paused_at"] == "2026-03-11T08:00:01.000Z"
    assert first["updated_at"] == rfc3339(Dossier.objects.get(pk=full.pk).updated_at)
    assert first["applicant"]["citizen_id"] == "001090012345"
    assert first["organisation"] == {
        "tax_code": full.organisation.tax_code,
        "name": full.organisation.name,
    }
    assert first["procedure_code"] == full.procedure.code
    assert first["attachments"][0]["id"] == str(paper.pk)
    assert first["attachments"][0]["created_at"] == rfc3339(paper.created_at)
    assert second["accepted_at"] is None
    assert second["organisation"] is None
    assert second["attachments"] == []


def test_a_feed_page_sends_the_orms_statement_for_its_values_compiled_once_per_shape(
    agency: Agency, agency_client: AgencyClient, other_agency_client: AgencyClient
) -> None:
    from django.db.models.sql.compiler import SQLCompiler

    from bench.scale import CapturedQueries

    mine = [dossier_of(agency) for _ in range(4)]
    for dossier in mine:
        attachment_rows(dossier, "doc-1", 2)
    theirs = dossier_of(other_agency_client.credential.agency)
    first = agency_client.get("/api/v1/agency/feed?limit=1").json()
    second = agency_client.get(f"/api/v1/agency/feed?limit=1&cursor={first['next_cursor']}").json()
    made: list[str] = []
    as_sql = SQLCompiler.as_sql

    def counting(self: SQLCompiler, *args: Any, **kwargs: Any) -> Any:
        made.append(self.query.model.__name__ if self.query.model else "")
        return as_sql(self, *args, **kwargs)

    now = dt.datetime.now(dt.UTC)
    with (
        mock.patch.object(SQLCompiler, "as_sql", counting),
        mock.patch("django.utils.timezone.now", return_value=now),
        CapturedQueries() as captured,
    ):
        third = agency_client.get(f"/api/v1/agency/feed?limit=1&cursor={second['next_cursor']}")
    # The two statements of a page of this shape were compiled by the pages before.
    assert [m for m in made if m in ("Dossier", "Attachment")] == []
    assert [item["id"] for item in third.json()["items"]] == [str(mine[2].pk)]
    # What the ORM compiles for this page's values, the agency's access rule included.
    from dossiers.agency.api import _feed_page

    moment, key = cursor_values(Dossier, ["updated_at", "id"], second["next_cursor"])
    expected = _feed_page(agency, 1, now, moment=moment, key=key).query.sql_with_params()
    [page_statement] = [q for q in captured.queries if '"dossiers_dossier"' in q[0]]
    assert (page_statement[0], list(page_statement[1])) == (expected[0], list(expected[1]))
    # Another agency's pages are its own statements: its dossier only.
    other = other_agency_client.get("/api/v1/agency/feed?limit=1").json()
    assert [item["id"] for item in other["items"]] == [str(theirs.pk)]


def test_a_pages_papers_are_one_statement_with_their_dossiers_ids_in_one_parameter(
    agency: Agency, agency_client: AgencyClient
) -> None:
    from bench.scale import CapturedQueries

    def papers_statement(limit: int) -> tuple[str, Any]:
        with CapturedQueries() as captured:
            page = agency_client.get(f"/api/v1/agency/feed?limit={limit}").json()
        assert sum(len(item["attachments"]) for item in page["items"]) == 2 * limit
        [statement] = [q for q in captured.queries if '"dossiers_attachment"' in q[0]]
        return statement

    for _ in range(3):
        attachment_rows(dossier_of(agency), "doc-1", 2)
    one, three = papers_statement(1), papers_statement(3)
    # `IN (%s, %s, ...)` made a parameter per dossier and a text per page size.
    assert one[0] == three[0]
    assert "= ANY(%s::uuid[])" in one[0]
    assert len(one[1]) == len(three[1]) == 1
