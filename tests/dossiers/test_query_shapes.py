"""The query shapes that must hold at a province's size (issue 19, `make bench-scale`):
each runs the real code on a small database seeded like the benchmark's (the same
SQL, a few thousand dossiers, ANALYZEd), and its plan must read the intended index,
never a sequential scan of the dossiers or of the event log; and each costs the
number of queries it costs today."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from auth.models import Membership, User
from bench import scale
from dossiers import lifecycle, monitoring
from dossiers.agency import api as agency_api
from dossiers.api import DossierFilters, list_dossiers
from dossiers.models import RUNNING_CONDITION, Agency, AgencyCredential, Dossier, DossierEvent
from tracking import stream

pytestmark = pytest.mark.django_db

BIG_TABLES = ("dossiers_dossier", "tracking_dossierevent")
# The partial indexes on running dossiers (all of them / not marked overdue yet).
DEADLINE_INDEXES = {"dossier_running_deadline", "dossier_unmarked_deadline"}


@pytest.fixture
def seeded() -> dict[str, Any]:
    # 2,000 dossiers, ~40,000 events: enough for the planner to tell an index from a scan.
    return scale.seed(0.002, vacuum=False)


def plan_of(queries: list[tuple[str, Any]], contains: str) -> str:
    """The EXPLAIN of the one captured statement that contains `contains`."""
    matching = [(sql, params) for sql, params in queries if contains in sql]
    assert len(matching) == 1, [sql[:80] for sql, _ in queries]
    sql, params = matching[0]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        found = cursor.fetchone()[0]
    plan = json.loads(found) if isinstance(found, str) else found
    return json.dumps(plan)


def scans(plan: str) -> list[tuple[str, str, str]]:
    """(node type, relation, index) of every scan node of a JSON plan."""
    found: list[tuple[str, str, str]] = []

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node or "Index Name" in node:
            found.append(
                (node["Node Type"], node.get("Relation Name", ""), node.get("Index Name", ""))
            )
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan)[0]["Plan"])
    return found


def assert_no_seq_scan_of_big_tables(plan: str) -> None:
    seq = [s for s in scans(plan) if s[0] == "Seq Scan" and s[1] in BIG_TABLES]
    assert seq == [], seq


def index_conditions(plan: str, index: str) -> list[str]:
    """The Index Cond of every scan of `index` in a JSON plan."""
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Index Name") == index:
            found.append(node.get("Index Cond", ""))
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan)[0]["Plan"])
    return found


def leading_column(index: str) -> str:
    """The first column of an index (the planner may pick any index that leads with it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indexrelid = %s::regclass",
            [index],
        )
        row = cursor.fetchone()
    return row[0] if row else ""


def indexes_used(plan: str) -> set[str]:
    return {index for _, _, index in scans(plan) if index}


def citizen() -> User:
    applicant = (
        Dossier.objects.filter(organisation__isnull=True)
        .order_by("-created_at")
        .values_list("applicant_id", flat=True)[0]
    )
    return User.objects.get(pk=applicant)


def member_of_largest_organisation() -> User:
    from django.db.models import Count

    largest = (
        Dossier.objects.filter(organisation__isnull=False)
        .values("organisation_id")
        .annotate(n=Count("pk"))
        .order_by("-n")[0]["organisation_id"]
    )
    membership = Membership.objects.filter(organisation_id=largest).first()
    assert membership is not None
    return membership.user


def list_for(user: User) -> Any:
    request = RequestFactory().get("/api/v1/dossiers")
    request.auth = user  # type: ignore[attr-defined]
    return list_dossiers(request, DossierFilters.model_validate({}))


def test_dossier_list_reads_the_applicants_and_the_organisations_dossiers_by_index(
    seeded: dict[str, Any],
) -> None:
    for user in (citizen(), member_of_largest_organisation()):
        with scale.CapturedQueries() as captured:
            page = list_for(user)
        assert len(captured.queries) == 1  # procedure and agency joined, no DISTINCT
        assert page["items"]
        plan = plan_of(captured.queries, "dossiers_dossier")
        assert_no_seq_scan_of_big_tables(plan)
        leading = {leading_column(name) for name in indexes_used(plan)}
        assert {"applicant_id", "organisation_id"} <= leading, leading
        assert "DISTINCT" not in captured.queries[0][0].upper()


def test_list_shows_exactly_own_and_organisation_dossiers(seeded: dict[str, Any]) -> None:
    user = member_of_largest_organisation()
    organisations = Membership.objects.filter(user=user).values_list("organisation_id", flat=True)
    expected = set(Dossier.objects.filter(applicant=user).values_list("pk", flat=True)) | set(
        Dossier.objects.filter(organisation_id__in=organisations).values_list("pk", flat=True)
    )
    from dossiers.access import visible_dossiers

    assert set(visible_dossiers(user).values_list("pk", flat=True)) == expected
    assert len(expected) > 1


def test_resume_finds_the_event_by_its_key_then_checks_the_dossier(
    seeded: dict[str, Any],
) -> None:
    user = citizen()
    event = DossierEvent.objects.filter(dossier__applicant=user).order_by("-id").first()
    assert event is not None
    with scale.CapturedQueries() as captured:
        stream.resume(user, event.pk)
    plan = plan_of(captured.queries, "tracking_dossierevent")
    assert_no_seq_scan_of_big_tables(plan)
    # By the event's key (or, when the planner prefers, the audience's events by
    # dossier): an index either way, never a walk of the log.
    used = indexes_used(plan)
    assert any(name.startswith(("tracking_dossierevent", "dossier_event")) for name in used), used
    # Someone else's event: the same query finds nothing.
    other = DossierEvent.objects.exclude(dossier__applicant=user).exclude(
        dossier__organisation__memberships__user=user
    )[0]
    assert stream.resume(user, other.pk) == "unknown_event"


def test_replay_from_months_back_reads_the_audiences_events_not_the_whole_log(
    seeded: dict[str, Any],
) -> None:
    for user in (citizen(), member_of_largest_organisation()):
        old = (
            DossierEvent.objects.filter(created_at__lte=timezone.now() - dt.timedelta(days=60))
            .order_by("-created_at")
            .first()
        )
        assert old is not None
        subscription = stream.Subscription(user, user.pk, None, stream.Position(old.txid, old.pk))
        with scale.CapturedQueries() as captured:
            frames = stream.pull(subscription)
        assert len(captured.queries) == 1
        plan = plan_of(captured.queries, "tracking_dossierevent")
        assert_no_seq_scan_of_big_tables(plan)
        used = indexes_used(plan)
        assert "dossier_event_audience_order" in used, used
        assert "dossier_event_log_order" not in used, used
        # What it delivers is still exactly the audience's events after the cursor.
        audience = set(stream.followed_dossiers(user).values_list("pk", flat=True))
        assert {frame["dossier_id"] for frame in frames} <= {str(pk) for pk in audience}


def test_agency_feed_starts_at_the_cursor_with_a_row_value(seeded: dict[str, Any]) -> None:
    agency = Agency.objects.get(pk=1)
    head = list(
        Dossier.objects.filter(agency=agency)
        .exclude(status=Dossier.Status.DRAFT)
        .order_by("-updated_at", "-id")
        .values_list("updated_at", "id")[:30]
    )[-1]
    request = RequestFactory().get("/api/v1/agency/feed")
    request.agency_credential = AgencyCredential(agency=agency, key_id="t")  # type: ignore[attr-defined]
    cursor = agency_api.encode_cursor(list(head))
    with scale.CapturedQueries() as captured:
        page = agency_api.feed(request, agency_api.FeedParams(cursor=cursor, limit=10))
    assert len(captured.queries) == 2  # the dossiers, then their attachments
    assert len(page["items"]) == 10
    assert [(d.updated_at, d.pk) for d in page["items"]] > [head]
    plan = plan_of(captured.queries, "dossiers_dossier")
    assert_no_seq_scan_of_big_tables(plan)
    assert "dossier_agency_feed" in indexes_used(plan)
    # The keyset is an index condition (the scan starts at the cursor), not a filter.
    conditions = index_conditions(plan, "dossier_agency_feed")
    assert any("ROW(updated_at, id) > ROW(" in c for c in conditions), conditions


def test_deadline_scans_read_only_running_dossiers_not_yet_marked(seeded: dict[str, Any]) -> None:
    now = timezone.now()
    with scale.CapturedQueries() as overdue_queries:
        due = list(
            monitoring.overdue(now=now).filter(overdue_at__isnull=True).values_list("pk", flat=True)
        )
    assert len(overdue_queries.queries) == 1
    plan = plan_of(overdue_queries.queries, "dossiers_dossier")
    assert_no_seq_scan_of_big_tables(plan)
    assert indexes_used(plan) & DEADLINE_INDEXES, indexes_used(plan)
    # The same dossiers as the definition's OR (original date, else appointment).
    expected = {
        d.pk
        for d in Dossier.objects.filter(RUNNING_CONDITION, overdue_at__isnull=True)
        if (d.original_appointment_at or d.appointment_at) < now
    }
    assert set(due) == expected

    with scale.CapturedQueries() as risk_queries:
        monitoring.at_risk(
            Dossier.objects.filter(deadline_warned_at__isnull=True, overdue_at__isnull=True), now
        )
    candidates = [sql for sql, _ in risk_queries.queries if "dossiers_dossier" in sql]
    calendars = [sql for sql, _ in risk_queries.queries if "dossiers_agencycalendarday" in sql]
    assert len(candidates) == 1
    # One calendar per agency, not per candidate dossier.
    assert len(calendars) <= Agency.objects.count()
    plan = plan_of(risk_queries.queries, '"dossiers_dossier"."id"')
    assert_no_seq_scan_of_big_tables(plan)
    assert indexes_used(plan) & DEADLINE_INDEXES, indexes_used(plan)


def test_the_running_index_condition_is_the_lifecycles_running_statuses() -> None:
    statuses = dict(RUNNING_CONDITION.children)["status__in"]
    assert sorted(statuses) == sorted(int(s) for s in lifecycle.CLOCK_RUNNING)
    assert sorted(statuses) == monitoring.RUNNING
