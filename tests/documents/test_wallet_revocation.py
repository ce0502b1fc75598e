"""A result revoked by its agency, used from the wallet: a revocation and an attach in
a defined order, the revocation shown on the attachments it became, and a dossier
holding one refused until its paper is replaced."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from threading import Event
from typing import Any, NamedTuple

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from auth.models import Membership
from backend.errors import Unprocessable
from documents import wallet
from documents.models import WalletItem
from documents.tasks import on_dossier_event
from dossiers import lifecycle
from dossiers.models import (
    Agency,
    Attachment,
    DocumentType,
    Dossier,
    DossierEvent,
    ResultDocument,
    SupplementRequest,
)
from dossiers.results import revoke_result
from notifications.actions import notify_event
from notifications.models import Notification
from tests.concurrency import in_threads, on_sql, statement, until_a_lock_wait, waiting_for
from tests.conftest import make_user
from tests.documents.pki import configure, make_pdf
from tests.documents.test_wallet import attach, client, keep
from tests.dossiers.attachments import samples
from tests.dossiers.conftest import RICH_FORM, VALID_FORM, AgencyClient
from tests.dossiers.conftest import attach as attachment_rows
from tests.factories import make_dossier, make_procedure, make_team

pytestmark = pytest.mark.django_db(transaction=True)  # the races need real commits

S = Dossier.Status


@pytest.fixture
def marriage(db: Any) -> DocumentType:
    return DocumentType.objects.create(code="gcn-kh", name="Giấy chứng nhận kết hôn")


@pytest.fixture(autouse=True)
def _no_settle(settings: Any) -> None:
    settings.AGENCY_FEED_SETTLE_SECONDS = 0


def issued(agency: Agency, agency_client: AgencyClient, settings: Any, holder: Any) -> WalletItem:
    """A signed result of one of `holder`'s dossiers, in their wallet."""
    configure(settings, agency.code)
    result_type = DocumentType.objects.get(code="gcn-kh")
    dossier = make_dossier(
        holder, make_procedure(agency, result_type=result_type), status=S.PROCESSING
    )
    response = agency_client.post(
        f"/api/v1/agency/dossiers/{dossier.code}/complete",
        multipart={"result_file": ContentFile(make_pdf(), name="kq.pdf"), "signing": "server"},
    )
    assert response.status_code == 200, response
    on_dossier_event(DossierEvent.objects.get(dossier=dossier, type="dossier.completed").pk)
    return WalletItem.objects.select_related("result").get(result__dossier=dossier)


class Scene(NamedTuple):
    holder: Any
    item: WalletItem  # a result of another dossier of the holder's, in their wallet
    dossier: Dossier  # a draft whose doc-1 takes it


@pytest.fixture
def scene(
    agency: Agency, agency_client: AgencyClient, settings: Any, marriage: DocumentType
) -> Scene:
    holder = make_user()
    return Scene(holder, issued(agency, agency_client, settings, holder), draft_of(agency, holder))


def attach_photo(holder: Any, dossier: Dossier) -> Any:
    """A kept photo of the result's type, attached to doc-1: a paper that stands."""
    photo = keep(holder, samples.jpeg_bytes(), document_type="gcn-kh").json()["id"]
    response = attach(holder, dossier, photo)
    assert response.status_code == 201, response
    return response.json()


def draft_of(agency: Agency, holder: Any, **extra: Any) -> Dossier:
    """A draft of another procedure of `agency` whose doc-1 takes the result's type."""
    procedure = make_procedure(agency, form_spec=RICH_FORM)
    procedure.documents.get(code="doc-1").accepted_types.add(
        DocumentType.objects.get(code="gcn-kh")
    )
    return make_dossier(holder, procedure, form_data=VALID_FORM, **extra)


def revoke(agency: Agency, item: WalletItem) -> ResultDocument:
    assert item.result is not None
    return revoke_result(
        agency, item.result.verification_code, reason="Cấp nhầm", actor_label="test system"
    )


def attach_again(holder: Any, dossier: Dossier, item: WalletItem, key: str) -> Any:
    return client(holder).post(
        f"/api/v1/dossiers/{dossier.pk}/wallet-attachments",
        {"wallet_item_id": str(item.pk), "document_code": "doc-1"},
        headers={"Idempotency-Key": key},
    )


def attach_stopping(
    holder: Any, dossier: Dossier, item: WalletItem, table: str, *, at: Event, until: Event
) -> Callable[[], Any]:
    """The wallet's attach, for a thread of its own: once its row lock of `table` is
    taken, it sets `at` and waits for `until`."""

    def hold() -> None:
        at.set()
        waiting_for(until)()

    def attaching() -> Any:
        with on_sql(after=(statement("SELECT", table, locking=True), hold)):
            return wallet.attach_from_wallet(
                holder, dossier.pk, item_id=item.pk, document_code="doc-1"
            )

    return attaching


def test_a_revoked_result_is_neither_offered_nor_attached(agency: Agency, scene: Scene) -> None:
    holder, item, dossier = scene
    revoke(agency, item)
    offers = client(holder).get(f"/api/v1/dossiers/{dossier.pk}/wallet-offers").json()
    assert offers[0]["items"] == []
    response = attach(holder, dossier, item.pk)
    assert (response.status_code, response.json()["code"]) == (422, "wallet_item_revoked")
    assert not Attachment.objects.filter(dossier=dossier).exists()


def test_an_attach_that_read_the_paper_before_a_revocation_committed_is_refused(
    agency: Agency, scene: Scene
) -> None:
    """The attach has read and locked its wallet paper (the result still standing);
    the revocation commits meanwhile: the attach, going on, must see it."""
    holder, item, dossier = scene
    paper_read, revoked = Event(), Event()
    attaching = attach_stopping(
        holder, dossier, item, "documents_walletitem", at=paper_read, until=revoked
    )

    def revoking() -> Any:
        waiting_for(paper_read)()
        try:
            return revoke(agency, item)
        finally:
            revoked.set()

    attached, revocation = in_threads(attaching, revoking)

    assert isinstance(revocation, ResultDocument), revocation
    assert isinstance(attached, Unprocessable), attached
    assert attached.code == "wallet_item_revoked"
    assert not Attachment.objects.filter(dossier=dossier).exists()
    assert Dossier.objects.get(pk=dossier.pk).version == dossier.version  # nothing written


def test_a_revocation_waits_for_an_attach_holding_the_result_then_shows_on_its_paper(
    agency: Agency, scene: Scene
) -> None:
    """The attach holds the result's row lock: the revocation waits for its commit,
    then finds the new attachment and changes its dossier."""
    holder, item, dossier = scene
    result_locked, revocation_started, release = Event(), Event(), Event()
    attaching = attach_stopping(
        holder, dossier, item, "dossiers_resultdocument", at=result_locked, until=release
    )

    def revoking() -> Any:
        waiting_for(result_locked)()
        revocation_started.set()
        return revoke(agency, item)

    def watching() -> bool:
        """Releases the attach once the revocation waits for a row lock (or at the bound:
        a revocation that never waits fails the test below)."""
        waiting_for(revocation_started)()
        try:
            return until_a_lock_wait()
        finally:
            release.set()

    attached, revocation, revocation_waited = in_threads(attaching, revoking, watching)

    assert revocation_waited is True
    assert isinstance(revocation, ResultDocument), revocation
    attachment, created = attached
    assert created is True
    assert Dossier.objects.get(pk=dossier.pk).version == dossier.version + 2  # attach, revoke
    paper = client(holder).get(f"/api/v1/dossiers/{dossier.pk}/attachments/{attachment.pk}")
    assert paper.json()["revoked"] is True


def test_a_revocation_shows_on_the_attachment_for_the_citizen_and_the_agency(
    agency: Agency, agency_client: AgencyClient, scene: Scene
) -> None:
    holder, item, dossier = scene
    api = client(holder)
    upload = attach_photo(holder, dossier)
    attached = attach_again(holder, dossier, item, "attach-1")
    assert attached.status_code == 201, attached
    paper = attached.json()
    assert (paper["revoked"], paper["revoked_at"]) == (False, None)
    assert api.post(f"/api/v1/dossiers/{dossier.pk}/submit", {}).status_code == 200
    feed = agency_client.get("/api/v1/agency/feed").json()
    cursor = feed["next_cursor"]
    [entry] = [entry for entry in feed["items"] if entry["id"] == str(dossier.pk)]
    assert {a["id"]: a["revoked"] for a in entry["attachments"]} == {
        upload["id"]: False,
        paper["id"]: False,
    }
    version = Dossier.objects.get(pk=dossier.pk).version

    result = revoke(agency, item)

    revoked_at = result.revoked_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert Dossier.objects.get(pk=dossier.pk).version == version + 1  # pollers see it
    listed = api.get(f"/api/v1/dossiers/{dossier.pk}/attachments").json()["items"]
    assert {a["id"]: (a["revoked"], a["revoked_at"]) for a in listed} == {
        upload["id"]: (False, None),
        paper["id"]: (True, revoked_at),
    }
    one = api.get(f"/api/v1/dossiers/{dossier.pk}/attachments/{paper['id']}").json()
    assert (one["revoked"], one["revoked_at"]) == (True, revoked_at)
    # The app's retry of the attach (same key) answers what is true now.
    replay = attach_again(holder, dossier, item, "attach-1").json()
    assert (replay["id"], replay["revoked"], replay["revoked_at"]) == (
        paper["id"],
        True,
        revoked_at,
    )
    # The agency's feed gives the dossier again, after its cursor, with the paper revoked.
    changed = agency_client.get(f"/api/v1/agency/feed?cursor={cursor}").json()
    entries = {entry["id"]: entry for entry in changed["items"]}
    assert set(entries) == {str(item.result.dossier_id), str(dossier.pk)}  # and the issuer
    entry = entries[str(dossier.pk)]
    assert {a["id"]: (a["revoked"], a["revoked_at"]) for a in entry["attachments"]} == {
        upload["id"]: (False, None),
        paper["id"]: (True, revoked_at),
    }


def test_listing_papers_with_their_revocation_costs_no_query_per_paper(
    agency: Agency, scene: Scene
) -> None:
    holder, item, dossier = scene
    api = client(holder)

    def queries_of_the_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(f"/api/v1/dossiers/{dossier.pk}/attachments").status_code == 200
        return len(captured.captured_queries)

    attachment_rows(dossier, "doc-1")
    one = queries_of_the_list()
    attach(holder, dossier, item.pk)
    revoke(agency, item)
    attachment_rows(dossier, "doc-1", 3)
    listed = client(holder).get(f"/api/v1/dossiers/{dossier.pk}/attachments").json()["items"]
    assert [paper["revoked"] for paper in listed] == [False, True, False, False, False]
    assert queries_of_the_list() == one


def test_the_dossier_read_counts_a_revoked_paper_apart_at_the_same_cost(
    agency: Agency, scene: Scene
) -> None:
    """`documents[].attached` counts what submission accepts: a revoked result is in
    `revoked`, read in the same statement as the rest."""
    holder, item, dossier = scene
    api = client(holder)
    attach_photo(holder, dossier)
    attach(holder, dossier, item.pk)

    def read() -> tuple[dict[str, tuple[int, int]], int]:
        with CaptureQueriesContext(connection) as captured:
            response = api.get(f"/api/v1/dossiers/{dossier.pk}")
        assert response.status_code == 200, response
        counts = {d["code"]: (d["attached"], d["revoked"]) for d in response.json()["documents"]}
        return counts, len(captured.captured_queries)

    read()  # the session's and the procedure's caches filled
    standing, queries = read()
    assert standing == {"doc-1": (2, 0)}
    revoke(agency, item)
    assert read() == ({"doc-1": (1, 1)}, queries)
    # The draft's own answer (a save) counts alike.
    saved = api.patch(f"/api/v1/dossiers/{dossier.pk}", {"form": {}}).json()
    assert [(d["attached"], d["revoked"]) for d in saved["documents"]] == [(1, 1)]


def test_a_draft_holding_a_revoked_result_is_not_sent(agency: Agency, scene: Scene) -> None:
    holder, item, dossier = scene
    api = client(holder)
    paper = attach(holder, dossier, item.pk).json()
    revoke(agency, item)
    version = Dossier.objects.get(pk=dossier.pk).version

    response = api.post(f"/api/v1/dossiers/{dossier.pk}/submit", {})

    assert response.status_code == 422, response
    body = response.json()
    assert body["code"] == "wallet_item_revoked"
    [detail] = body["details"]
    assert (detail["field"], detail["code"], detail["attachment_id"]) == (
        "documents.doc-1",
        "wallet_item_revoked",
        paper["id"],
    )
    after = Dossier.objects.get(pk=dossier.pk)
    assert (after.status, after.code, after.version) == (S.DRAFT, None, version)
    # The revocation's notice only: the refused submit wrote no event.
    assert [e.type for e in DossierEvent.objects.filter(dossier=dossier)] == [
        "dossier.paper_revoked"
    ]
    # Replaced by a paper that stands, it goes.
    assert api.delete(f"/api/v1/dossiers/{dossier.pk}/attachments/{paper['id']}").status_code == 204
    attach_photo(holder, dossier)
    assert api.post(f"/api/v1/dossiers/{dossier.pk}/submit", {}).status_code == 200


def test_a_supplement_holding_a_revoked_result_is_not_sent(agency: Agency, scene: Scene) -> None:
    holder, item, dossier = scene
    api = client(holder)
    attach_photo(holder, dossier)
    assert api.post(f"/api/v1/dossiers/{dossier.pk}/submit", {}).status_code == 200
    lifecycle.accept(dossier.pk, lifecycle.Actor.agency_system("test system"))
    lifecycle.request_supplement(
        dossier.pk,
        lifecycle.Actor.agency_system("test system"),
        documents=[{"code": "doc-1", "note": "Bản chính"}],
        message="Bổ sung",
    )
    paper = attach(holder, dossier, item.pk).json()
    revoke(agency, item)
    version = Dossier.objects.get(pk=dossier.pk).version

    response = api.post(f"/api/v1/dossiers/{dossier.pk}/supplement", {"message": "Đã bổ sung"})

    assert response.status_code == 422, response
    assert response.json()["code"] == "wallet_item_revoked"
    assert response.json()["details"][0]["attachment_id"] == paper["id"]
    after = Dossier.objects.get(pk=dossier.pk)
    assert (after.status, after.version) == (S.SUPPLEMENT_REQUESTED, version)
    assert SupplementRequest.objects.get(dossier=dossier).answered_at is None


def events_of(dossier: Dossier | uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    return [
        (event.type, event.data)
        for event in DossierEvent.objects.filter(dossier=dossier).order_by("seq")
    ]


def push_jobs_of(events: list[DossierEvent]) -> list[int]:
    """The event ids of the queued push fan-out jobs for `events` (committed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (args->>'event_id')::bigint FROM procrastinate_jobs "
            "WHERE task_name = 'notifications.fan_out_event' AND status = 'todo' "
            "AND (args->>'event_id')::bigint = ANY(%s) ORDER BY 1",
            [[event.pk for event in events]],
        )
        return [row[0] for row in cursor.fetchall()]


def test_each_dossier_holding_the_revoked_result_gets_one_event_naming_its_papers(
    agency: Agency, scene: Scene
) -> None:
    holder, item, dossier = scene
    other = draft_of(agency, holder)
    dropped = draft_of(agency, holder)  # held it, the paper removed since
    api = client(holder)
    paper = attach(holder, dossier, item.pk).json()
    attach_photo(holder, other)
    again = attach(holder, other, item.pk).json()
    removed = attach(holder, dropped, item.pk).json()
    assert (
        api.delete(f"/api/v1/dossiers/{dropped.pk}/attachments/{removed['id']}").status_code == 204
    )
    issuer = item.result.dossier_id
    before = events_of(issuer)

    revoke(agency, item)

    assert events_of(issuer) == [
        *before,
        ("dossier.result_revoked", {"verification_code": item.result.verification_code}),
    ]
    for holding, attached in ((dossier, paper), (other, again)):
        assert events_of(holding) == [
            (
                "dossier.paper_revoked",
                {"papers": [{"attachment_id": attached["id"], "document_code": "doc-1"}]},
            )
        ]
    assert events_of(dropped) == []
    notice = DossierEvent.objects.get(dossier=dossier)
    assert (notice.actor_type, notice.message) == ("agency", "")  # the reason is the holder's
    assert (notice.status_before, notice.status_after) == (S.DRAFT, S.DRAFT)
    timeline = api.get(f"/api/v1/dossiers/{dossier.pk}/timeline", headers={"Accept-Language": "en"})
    assert [(step["event_type"], step["text"]) for step in timeline.json()["steps"]] == [
        (
            "dossier.paper_revoked",
            "A paper of this dossier is a result its agency revoked: replace it.",
        )
    ]


def test_a_business_dossier_holding_the_revoked_result_pushes_to_its_own_audience(
    agency: Agency, scene: Scene
) -> None:
    """A member attached their own result to the business's dossier: its applicant and
    the members watching it hear of the paper, as of any event of that dossier."""
    holder, item, _ = scene
    organisation, people = make_team("applicant", "watcher", "quiet")
    Membership.objects.create(organisation=organisation, user=holder, watches=False)
    Membership.objects.filter(user=people["quiet"]).update(watches=False)
    business = draft_of(agency, people["applicant"], organisation=organisation)
    assert attach(holder, business, item.pk).status_code == 201
    issuer = Dossier.objects.get(pk=item.result.dossier_id)

    revoke(agency, item)

    own = DossierEvent.objects.get(dossier=issuer, type="dossier.result_revoked")
    paper = DossierEvent.objects.get(dossier=business)
    assert paper.type == "dossier.paper_revoked"
    assert push_jobs_of([own, paper]) == sorted([own.pk, paper.pk])
    notify_event(paper.pk)
    notify_event(own.pk)
    told = Notification.objects.filter(event=paper)
    assert {n.user for n in told} == {people["applicant"], people["watcher"]}
    assert {(n.category, n.urgent) for n in told} == {("action_requests", False)}
    assert {n.title for n in told} == {"Giấy tờ đã bị thu hồi"}
    assert "Cấp nhầm" not in " ".join(n.body for n in told)
    assert [n.user for n in Notification.objects.filter(event=own)] == [holder]
