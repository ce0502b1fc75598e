"""Deadline monitoring (overdue, at risk, violations), apologies and performance figures."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.times import rfc3339
from dossiers import monitoring
from dossiers.agency.access import agency_dossiers
from dossiers.deadlines import add_working_seconds
from dossiers.models import Agency, Apology, Dossier, DossierEvent
from tests.conftest import ApiClient, make_user, sign_in
from tests.dossiers.conftest import AgencyClient
from tests.factories import make_agency, make_dossier, make_procedure

pytestmark = pytest.mark.django_db
VN = ZoneInfo("Asia/Ho_Chi_Minh")
S = Dossier.Status
C = Dossier.Channel


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN)


def dossier_of(agency: Agency, status: int, **extra: object) -> Dossier:
    return make_dossier(make_user(password=None), make_procedure(agency), status=status, **extra)


def events(dossier: Dossier) -> list[str]:
    return list(DossierEvent.objects.filter(dossier=dossier).values_list("type", flat=True))


# --- The periodic scan ---------------------------------------------------------------------------


def test_scan_marks_overdue_dossiers_once(agency: Agency) -> None:
    past = timezone.now() - dt.timedelta(hours=2)
    late = dossier_of(agency, S.PROCESSING, appointment_at=past)
    paused = dossier_of(agency, S.SUPPLEMENT_REQUESTED, appointment_at=past, paused_at=past)
    finished = dossier_of(agency, S.RESULT_READY, appointment_at=past, finished_at=past)
    assert monitoring.scan_deadlines() == {"overdue": 1, "at_risk": 0}
    late.refresh_from_db()
    assert late.overdue_at is not None
    assert events(late) == ["dossier.overdue"]
    event = DossierEvent.objects.get(dossier=late)
    assert (event.actor_type, event.status_before, event.status_after) == ("system", 4, 4)
    assert event.data["deadline"] == rfc3339(past)
    assert events(paused) == []
    assert events(finished) == []
    # A second scan records nothing new.
    assert monitoring.scan_deadlines() == {"overdue": 0, "at_risk": 0}
    assert events(late) == ["dossier.overdue"]


def test_scan_warns_once_of_dossiers_with_less_than_a_working_day_left(agency: Agency) -> None:
    now = timezone.now()
    soon = dossier_of(agency, S.ACCEPTED, appointment_at=add_working_seconds(agency, now, 3600))
    later = dossier_of(
        agency, S.PROCESSING, appointment_at=add_working_seconds(agency, now, 9 * 3600)
    )
    assert monitoring.scan_deadlines() == {"overdue": 0, "at_risk": 1}
    assert events(soon) == ["dossier.deadline_at_risk"]
    event = DossierEvent.objects.get(dossier=soon)
    assert 0 < event.data["working_seconds_left"] <= 3600
    assert events(later) == []
    assert monitoring.scan_deadlines() == {"overdue": 0, "at_risk": 0}
    assert events(soon) == ["dossier.deadline_at_risk"]


# --- Apology -----------------------------------------------------------------------------------


def test_apology_sets_a_later_date_and_keeps_the_original(
    agency: Agency, agency_client: AgencyClient
) -> None:
    original = timezone.now() - dt.timedelta(hours=3)
    dossier = dossier_of(agency, S.PROCESSING, appointment_at=original)
    assert list(monitoring.overdue_without_apology(Dossier.objects.all())) == [dossier]
    new_date = (original + dt.timedelta(days=5)).astimezone(VN)
    response = agency_client.post(
        f"/api/v1/agency/dossiers/{dossier.code}/apologise",
        {"new_appointment_at": new_date.isoformat(), "reason": "Cần xác minh thực địa"},
    )
    assert response.status_code == 200, response
    dossier.refresh_from_db()
    assert dossier.appointment_at == new_date
    assert dossier.original_appointment_at == original
    assert dossier.apologised_at is not None
    apology = Apology.objects.get(dossier=dossier)
    assert (apology.previous_appointment_at, apology.new_appointment_at) == (original, new_date)
    event = DossierEvent.objects.get(dossier=dossier)
    assert event.type == "dossier.apologised"
    assert event.message == "Cần xác minh thực địa"
    assert event.data["form"] == "04"
    assert event.data["previous_appointment_at"] == rfc3339(original)
    assert event.data["new_appointment_at"] == rfc3339(new_date)
    # Still overdue against the legal deadline, but no longer a violation.
    assert list(monitoring.overdue(Dossier.objects.all())) == [dossier]
    assert list(monitoring.overdue_without_apology(Dossier.objects.all())) == []


def test_apology_date_must_be_later_than_the_current_one(
    agency: Agency, agency_client: AgencyClient
) -> None:
    current = timezone.now() + dt.timedelta(days=1)
    dossier = dossier_of(agency, S.PROCESSING, appointment_at=current)
    response = agency_client.post(
        f"/api/v1/agency/dossiers/{dossier.code}/apologise",
        {"new_appointment_at": current.isoformat(), "reason": "x"},
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["code"] == "appointment_not_later"
    dossier.refresh_from_db()
    assert dossier.appointment_at == current
    assert dossier.original_appointment_at is None
    assert Apology.objects.count() == 0
    assert events(dossier) == []


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def test_monitoring_counts_and_lists_the_agencys_dossiers_only(
    agency: Agency, agency_client: AgencyClient
) -> None:
    now = timezone.now()
    violation = dossier_of(agency, S.PROCESSING, appointment_at=now - dt.timedelta(hours=1))
    apologised = dossier_of(
        agency,
        S.PAYMENT_REQUESTED,
        original_appointment_at=now - dt.timedelta(hours=2),
        appointment_at=now + dt.timedelta(days=3),
    )
    risky = dossier_of(agency, S.ACCEPTED, appointment_at=add_working_seconds(agency, now, 1800))
    dossier_of(make_agency(), S.PROCESSING, appointment_at=now - dt.timedelta(hours=1))
    response = agency_client.get("/api/v1/agency/monitoring/summary")
    assert response.status_code == 200
    assert response.json() == {"overdue": 2, "overdue_without_apology": 1, "at_risk": 1}
    # The published route answers as before (deprecated: every dossier at once).
    whole = agency_client.get("/api/v1/agency/monitoring").json()
    assert [item["id"] for item in whole["overdue"]] == [str(apologised.pk), str(violation.pk)]
    assert [item["id"] for item in whole["overdue_without_apology"]] == [str(violation.pk)]
    assert [item["id"] for item in whole["at_risk"]] == [str(risky.pk)]
    assert 0 < whole["at_risk"][0]["working_seconds_left"] <= 1800

    overdue = agency_client.get("/api/v1/agency/monitoring/overdue").json()
    assert ids(overdue) == [str(apologised.pk), str(violation.pk)]
    assert (overdue["next_cursor"], overdue["has_more"]) == (None, False)
    assert overdue["items"][0]["deadline"] == rfc3339(apologised.original_appointment_at)
    assert overdue["items"][0]["working_seconds_left"] is None
    violations = agency_client.get("/api/v1/agency/monitoring/overdue-without-apology").json()
    assert ids(violations) == [str(violation.pk)]
    at_risk = agency_client.get("/api/v1/agency/monitoring/at-risk").json()
    assert ids(at_risk) == [str(risky.pk)]
    assert 0 < at_risk["items"][0]["working_seconds_left"] <= 1800


def test_monitoring_lists_page_by_cursor_at_most_the_page_size_setting(
    agency: Agency, agency_client: AgencyClient, settings: Any
) -> None:
    # The largest agency's three lists were one answer of 1.3 MB at 1 M dossiers.
    settings.API_PAGE_SIZE_DEFAULT = 2
    settings.API_PAGE_SIZE_MAX = 3
    now = timezone.now()
    same = now - dt.timedelta(days=1)
    late = [
        dossier_of(agency, S.PROCESSING, appointment_at=now - dt.timedelta(hours=hours))
        for hours in (9, 8, 7, 6, 5)
    ] + [dossier_of(agency, S.ACCEPTED, appointment_at=same) for _ in range(2)]
    expected = [
        str(d.pk)
        for d in sorted(late, key=lambda d: (d.appointment_at, d.pk))  # type: ignore[operator]
    ]
    path = "/api/v1/agency/monitoring/overdue"

    assert ids(agency_client.get(path).json()) == expected[:2]  # API_PAGE_SIZE_DEFAULT
    at_most = agency_client.get(f"{path}?limit=3").json()
    assert ids(at_most) == expected[:3]
    assert at_most["has_more"] is True
    over = agency_client.get(f"{path}?limit=4").json()  # one over: cut, no error
    assert ids(over) == expected[:3]
    assert over["next_cursor"] == at_most["next_cursor"]

    seen: list[str] = []
    cursor = ""
    while True:
        page = agency_client.get(f"{path}?limit=1000{cursor}").json()
        assert len(page["items"]) <= 3
        seen += ids(page)
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == expected  # each once, ties on the deadline by id

    exactly = [dossier_of(agency, S.ACCEPTED, appointment_at=same) for _ in range(1)]
    assert len(exactly) + len(late) == 8
    pages = [agency_client.get(f"{path}?limit=3").json()]
    while pages[-1]["has_more"]:
        pages.append(agency_client.get(f"{path}?limit=3&cursor={pages[-1]['next_cursor']}").json())
    assert [len(page["items"]) for page in pages] == [3, 3, 2]


def test_the_at_risk_list_pages_in_deadline_order(
    agency: Agency, agency_client: AgencyClient
) -> None:
    now = timezone.now()
    risky = [
        dossier_of(
            agency, S.ACCEPTED, appointment_at=add_working_seconds(agency, now, minutes * 60)
        )
        for minutes in (50, 10, 30)
    ]
    first = agency_client.get("/api/v1/agency/monitoring/at-risk?limit=2").json()
    rest = agency_client.get(
        f"/api/v1/agency/monitoring/at-risk?limit=2&cursor={first['next_cursor']}"
    ).json()
    assert ids(first) + ids(rest) == [str(risky[i].pk) for i in (1, 2, 0)]
    assert (first["has_more"], rest["has_more"], rest["next_cursor"]) == (True, False, None)
    lefts = [item["working_seconds_left"] for item in first["items"] + rest["items"]]
    assert lefts == sorted(lefts)


# Moments whose next working day is odd: the day reaches over a weekend, a holiday, the
# agency's own day off or make-up Saturday, Tết 2027; before opening, at lunch, at the
# closing second; with and without microseconds.
SUMMARY_MOMENTS = [
    at(2026, 12, 11, 15, 20, 7, 123456),  # Friday afternoon
    at(2026, 12, 14, 6, 0),  # Monday before opening
    at(2026, 12, 15, 12, 15),  # Tuesday lunch break; Wednesday is the agency's day off
    at(2026, 12, 15, 16, 30),  # Tuesday's closing moment
    at(2026, 12, 18, 13, 0),  # Friday's afternoon opening; Saturday is a make-up day
    at(2026, 12, 31, 16, 29, 59, 999999),  # New Year's Eve (1 January is a holiday)
    at(2027, 2, 3, 10, 0),  # Tết 2027: 4 to 10 February off
]


def test_the_at_risk_count_is_what_the_at_risk_pages_list(
    agency: Agency, agency_client: AgencyClient
) -> None:
    # The summary counts in SQL and checks only the dossiers due around one working
    # day from now; the pages list each through the calendar: the same dossiers.
    from unittest import mock

    from dossiers.deadlines import WorkingCalendar

    agency.office_hours = [["07:30", "11:30"], ["13:00", "16:30"]]  # 7.5 hours a day
    agency.save()
    agency.calendar_days.create(date=dt.date(2026, 12, 16), kind="day_off")
    agency.calendar_days.create(date=dt.date(2026, 12, 19), kind="working_day")
    calendar = WorkingCalendar(agency)
    per_day = calendar.seconds_per_day()
    applicant = make_user(password=None)
    procedure = make_procedure(agency)
    others = make_procedure(make_agency())  # the national calendar, 8 hours a day
    micro = dt.timedelta(microseconds=1)
    marks: dict[dt.datetime, tuple[Dossier, Dossier]] = {}
    for now in SUMMARY_MOMENTS:
        end = calendar.add_seconds(now, per_day)  # one working day from now
        working = [0, 1, 60, 3600, per_day - 61, per_day - 60, per_day - 1, per_day]
        working += [per_day + 1, per_day + 60, per_day + 61, 2 * per_day]
        due = [calendar.add_seconds(now, seconds) for seconds in working]
        due += [now - micro, now, now + micro, end - micro, end + micro]
        due += [now + dt.timedelta(hours=hours) for hours in (3, 20, 50, 100)]
        for index, deadline in enumerate(due):
            status = (S.ACCEPTED, S.PROCESSING, S.PAYMENT_REQUESTED)[index % 3]
            make_dossier(applicant, procedure, status=status, appointment_at=deadline)
        # Due at the mark's either side, after an apology: the legal deadline counts.
        just_in, just_out = (
            make_dossier(
                applicant,
                procedure,
                status=S.PROCESSING,
                original_appointment_at=deadline,
                appointment_at=deadline + dt.timedelta(days=5),
                apologised_at=now - dt.timedelta(days=1),
            )
            for deadline in (end - micro, end)
        )
        marks[now] = (just_in, just_out)
        # Never at risk: paused for a supplement, finished, stopped, not yet accepted.
        soon = calendar.add_seconds(now, 600)
        make_dossier(applicant, procedure, status=S.SUPPLEMENT_REQUESTED, appointment_at=soon,
                     paused_at=now - dt.timedelta(hours=1))  # fmt: skip
        make_dossier(applicant, procedure, status=S.PROCESSING, appointment_at=soon,
                     paused_at=now - dt.timedelta(hours=1))  # fmt: skip
        make_dossier(applicant, procedure, status=S.RESULT_READY, appointment_at=soon,
                     finished_at=now - dt.timedelta(hours=1))  # fmt: skip
        make_dossier(applicant, procedure, status=S.HANDED_OVER, appointment_at=soon,
                     finished_at=now - dt.timedelta(hours=1))  # fmt: skip
        make_dossier(applicant, procedure, status=S.STOPPED, appointment_at=soon)
        make_dossier(applicant, procedure, status=S.NEW, appointment_at=soon)
        # Another agency's, due when this one's would be at risk.
        for seconds in (60, per_day - 1, per_day + 1800):
            make_dossier(applicant, others, status=S.PROCESSING,
                         appointment_at=calendar.add_seconds(now, seconds))  # fmt: skip

    running = list(monitoring.running(Dossier.objects.filter(agency=agency)))
    for now in SUMMARY_MOMENTS:
        # By the definition: less than one working day left in the agency's calendar.
        expected = [
            str(dossier.pk)
            for dossier in sorted(running, key=lambda d: (d.deadline, d.pk))  # type: ignore[attr-defined]
            if dossier.deadline >= now  # type: ignore[attr-defined]
            and calendar.seconds_between(now, dossier.deadline) < per_day  # type: ignore[attr-defined]
        ]
        with mock.patch("django.utils.timezone.now", return_value=now):
            count = agency_client.get("/api/v1/agency/monitoring/summary").json()["at_risk"]
            listed: list[str] = []
            cursor = ""
            while True:
                page = agency_client.get(f"/api/v1/agency/monitoring/at-risk?limit=4{cursor}")
                listed += ids(page.json())
                if not page.json()["has_more"]:
                    break
                cursor = f"&cursor={page.json()['next_cursor']}"
        assert listed == expected, now
        assert count == len(listed), now
        just_in, just_out = marks[now]
        assert str(just_in.pk) in listed
        assert str(just_out.pk) not in listed
        assert len(listed) >= 10


def test_the_summary_counts_the_at_risk_dossiers_without_reading_them(
    agency: Agency, agency_client: AgencyClient
) -> None:
    # An agency polls its summary: the count read every at-risk dossier (hundreds for
    # the largest agency at 1 M) and every agency's calendar. Only the agency's own
    # calendar is read, and only a dossier due around its working day's end is.
    from unittest import mock

    from bench.scale import CapturedQueries
    from dossiers.deadlines import WorkingClock

    now = timezone.now()
    for _ in range(3):
        make_agency()
    risky = [
        dossier_of(
            agency, S.PROCESSING, appointment_at=add_working_seconds(agency, now, minutes * 60)
        )
        for minutes in (5, 30, 60, 120, 240, 478)
    ]
    mark = add_working_seconds(agency, now, 8 * 3600)  # one working day from now
    around = mark - dt.timedelta(seconds=30)
    risky.append(dossier_of(agency, S.ACCEPTED, appointment_at=around))
    dossier_of(agency, S.ACCEPTED, appointment_at=add_working_seconds(agency, now, 9 * 3600))
    loaded = mock.patch.object(Dossier, "from_db", wraps=Dossier.from_db)
    checked = mock.patch.object(WorkingClock, "seconds_to", autospec=True,
                                side_effect=WorkingClock.seconds_to)  # fmt: skip
    with loaded as rows, checked as clock, CapturedQueries() as captured:
        response = agency_client.get("/api/v1/agency/monitoring/summary")
    assert response.json()["at_risk"] == len(risky) == 7
    assert rows.call_count == 0  # no dossier read as a row
    assert [call.args[1] for call in clock.call_args_list] == [around]  # only the one near
    dossiers = [sql for sql, _ in captured.queries if 'FROM "dossiers_dossier"' in sql]
    assert len(dossiers) == 3  # the overdue counts, the at-risk counts, the one near
    assert not [sql for sql, _ in captured.queries if 'FROM "dossiers_agency"' in sql]
    [(_, params)] = [q for q in captured.queries if 'FROM "dossiers_agencycalendarday"' in q[0]]
    assert params[0] == f"{{{agency.pk}}}"  # its own calendar days (an array), no other's


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("cursor=%25%25%25", "cursor", "invalid_cursor"),
        ("cursor=WzEsMiwzXQ", "cursor", "invalid_cursor"),  # [1, 2, 3]
        ("cursor=WyJub3QgYSBtb21lbnQiLCAiYSJd", "cursor", "invalid_cursor"),
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=1001", "limit", "less_than_equal"),
    ],
)
@pytest.mark.parametrize("path", ["overdue", "overdue-without-apology", "at-risk"])
def test_a_bad_page_request_is_a_coded_field_error(
    agency_client: AgencyClient, path: str, query: str, field: str, code: str
) -> None:
    response = agency_client.get(f"/api/v1/agency/monitoring/{path}?{query}")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert {(d["field"], d["location"], d["code"]) for d in body["details"]} == {
        (field, "query", code)
    }


@pytest.mark.parametrize("path", ["/summary", "/overdue", "/overdue-without-apology", "/at-risk"])
def test_monitoring_needs_the_agencys_signature(path: str, agency_client: AgencyClient) -> None:
    response = agency_client.api.get(f"/api/v1/agency/monitoring{path}")
    assert response.status_code == 401
    assert response.json()["code"] == "signature_required"


def test_the_at_risk_scan_reads_only_what_its_callers_show(
    agency: Agency, agency_client: AgencyClient
) -> None:
    # The monitoring's columns and the agency's key: not the form, nor the agency's and
    # procedure's rows (three quarters of the scan's time at 1 M dossiers), whatever the
    # caller's queryset selects (the admin's filter passes one that selects both).
    now = timezone.now()
    first = dossier_of(agency, S.ACCEPTED, appointment_at=add_working_seconds(agency, now, 1200))
    with CaptureQueriesContext(connection) as captured:
        found = monitoring.at_risk(Dossier.objects.select_related("agency", "procedure"), now)
    assert [dossier.pk for dossier, _left in found] == [first.pk]
    [candidates] = [
        query["sql"]
        for query in captured.captured_queries
        if 'FROM "dossiers_dossier"' in query["sql"]
    ]
    assert " JOIN " not in candidates
    selected = candidates.split(' FROM "dossiers_dossier"')[0]
    assert set(re.findall(r'"dossiers_dossier"\."(\w+)"', selected)) == {
        "id",
        "code",
        "status",
        "agency_id",
        "appointment_at",
        "original_appointment_at",
        "overdue_at",
        "apologised_at",
    }

    def the_monitoring() -> tuple[int, dict[str, Any]]:
        with CaptureQueriesContext(connection) as captured:
            response = agency_client.get("/api/v1/agency/monitoring/at-risk")
        assert response.status_code == 200
        return len(captured.captured_queries), response.json()

    queries_with_one, _ = the_monitoring()
    later = [
        dossier_of(
            agency,
            S.PROCESSING,
            appointment_at=add_working_seconds(agency, now, minutes * 60),
            apologised_at=now,
        )
        for minutes in (30, 40, 50)
    ]
    queries_with_four, body = the_monitoring()
    # No dossier's column read on its own (a deferred field would cost a query each).
    assert queries_with_four == queries_with_one
    assert [item["id"] for item in body["items"]] == [str(d.pk) for d in (first, *later)]
    item = body["items"][1]
    assert (item["code"], item["status"]) == (later[0].code, S.PROCESSING)
    assert item["appointment_at"] == item["deadline"] == rfc3339(later[0].appointment_at)
    assert item["apologised_at"] == rfc3339(now)
    assert item["overdue_at"] is None


@pytest.mark.parametrize("path", ["overdue", "overdue-without-apology"])
def test_an_overdue_page_reads_what_it_shows_in_one_statement(
    agency: Agency, agency_client: AgencyClient, path: str
) -> None:
    now = timezone.now()

    def the_page() -> tuple[list[str], dict[str, Any]]:
        with CaptureQueriesContext(connection) as captured:
            response = agency_client.get(f"/api/v1/agency/monitoring/{path}")
        assert response.status_code == 200
        return [query["sql"] for query in captured.captured_queries], response.json()

    def late(hours: int) -> Dossier:
        return dossier_of(
            agency, S.PROCESSING, appointment_at=now - dt.timedelta(hours=hours), apologised_at=now
        )

    first = late(5)
    with_one, _ = the_page()
    others = [late(hours) for hours in (4, 3, 2)]
    with_four, body = the_page()
    # No dossier's column read on its own (a deferred field would cost a query each).
    assert len(with_four) == len(with_one)
    assert [item["id"] for item in body["items"]] == [str(d.pk) for d in (first, *others)]
    assert body["items"][0]["apologised_at"] == rfc3339(now)
    [statement] = [sql for sql in with_four if 'FROM "dossiers_dossier"' in sql]
    selected = statement.split(' FROM "dossiers_dossier"')[0]
    assert set(re.findall(r'"dossiers_dossier"\."(\w+)"', selected)) == set(
        monitoring.AT_RISK_FIELDS
    )


def _candidate_statements(captured: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in captured.captured_queries
        if 'FROM "dossiers_dossier"' in query["sql"]
    ]


def test_an_at_risk_page_reads_no_more_dossiers_than_it_shows(
    agency: Agency, agency_client: AgencyClient
) -> None:
    # At national scale an agency has thousands of dossiers at risk: the page read them
    # all after its cursor and kept `limit + 1`. It now reads at most `limit + 1` rows
    # (LIMIT in SQL after the keyset), and pages through the same list as the whole.
    from bench.scale import CapturedQueries

    now = timezone.now()
    risky = [
        dossier_of(agency, S.ACCEPTED, appointment_at=add_working_seconds(agency, now, 60 * m))
        for m in range(5, 30)
    ]
    risky.append(dossier_of(agency, S.PROCESSING, appointment_at=risky[3].appointment_at))
    dossier_of(agency, S.ACCEPTED, appointment_at=add_working_seconds(agency, now, 9 * 3600))
    whole = [str(d.pk) for d, _left in monitoring.at_risk(agency_dossiers(agency), now, agency)]
    assert len(whole) == len(risky) == 26

    listed: list[str] = []
    cursor = ""
    pages = 0
    while True:
        with CapturedQueries() as captured:
            page = agency_client.get(f"/api/v1/agency/monitoring/at-risk?limit=5{cursor}").json()
        [(statement, params)] = [q for q in captured.queries if 'FROM "dossiers_dossier"' in q[0]]
        assert statement.endswith("LIMIT 6"), statement[-80:]
        if cursor:  # the keyset is in the statement, as a row value, before the LIMIT
            assert re.search(r'\(COALESCE\(.*\), "dossiers_dossier"\."id"\) > \(', statement)
        # The rows the database sends for the page: at most one more than it shows.
        with connection.cursor() as raw:
            raw.execute(statement, params)
            assert len(raw.fetchall()) == len(page["items"]) + page["has_more"] <= 6
        listed += ids(page)
        pages += 1
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        assert len(page["items"]) == 5
        cursor = f"&cursor={page['next_cursor']}"
    assert listed == whole  # the same rows in the same order, each once
    assert pages == 6  # 5 + 5 + 5 + 5 + 5 + 1


def test_a_limit_of_the_at_risk_list_is_its_first_rows(agency: Agency) -> None:
    # The limit rests on one calendar's order: with the seconds left only growing with
    # the deadline, the first `limit` candidates hold the list's first `limit`, even
    # where candidates near the working day's end are not at risk.
    from dossiers.deadlines import WorkingCalendar

    agency.office_hours = [["07:30", "11:30"], ["13:00", "16:30"]]
    agency.save()
    calendar = WorkingCalendar(agency)
    per_day = calendar.seconds_per_day()
    own = Dossier.objects.filter(agency=agency)
    micro = dt.timedelta(microseconds=1)
    for now in SUMMARY_MOMENTS[:3]:
        end = calendar.add_seconds(now, per_day)
        for deadline in (calendar.add_seconds(now, 60), end - micro, end, end + micro):
            dossier_of(agency, S.PROCESSING, appointment_at=deadline)
    for now in SUMMARY_MOMENTS[:3]:
        whole = monitoring.at_risk(own, now, agency)
        assert whole
        for limit in range(1, len(whole) + 3):
            limited = monitoring.at_risk(own, now, agency, limit=limit)
            assert [(d.pk, left) for d, left in limited] == [
                (d.pk, left) for d, left in whole[:limit]
            ], (now, limit)
    with pytest.raises(ValueError, match="one agency"):
        monitoring.at_risk(own, SUMMARY_MOMENTS[0], limit=3)


def test_the_summary_counts_both_overdue_lists_in_one_statement(
    agency: Agency, agency_client: AgencyClient
) -> None:
    # Every agency polls it: the two overdue counts were two statements.
    now = timezone.now()
    dossier_of(agency, S.PROCESSING, appointment_at=now - dt.timedelta(hours=1))
    dossier_of(agency, S.ACCEPTED, appointment_at=now - dt.timedelta(days=2))
    dossier_of(agency, S.PAYMENT_REQUESTED, original_appointment_at=now - dt.timedelta(hours=2),
               appointment_at=now + dt.timedelta(days=3))  # fmt: skip
    dossier_of(agency, S.SUPPLEMENT_REQUESTED, appointment_at=now - dt.timedelta(hours=1),
               paused_at=now - dt.timedelta(hours=2))  # fmt: skip
    dossier_of(agency, S.RESULT_READY, appointment_at=now - dt.timedelta(hours=1),
               finished_at=now - dt.timedelta(minutes=5))  # fmt: skip
    dossier_of(make_agency(), S.PROCESSING, appointment_at=now - dt.timedelta(hours=1))
    with CaptureQueriesContext(connection) as captured:
        response = agency_client.get("/api/v1/agency/monitoring/summary")
    assert response.json() == {"overdue": 3, "overdue_without_apology": 2, "at_risk": 0}
    statements = _candidate_statements(captured)
    # The overdue counts, the at-risk counts (none due near the working day's end).
    assert len(statements) == 2, statements
    [overdue] = [sql for sql in statements if 'AS "overdue_without_apology"' in sql]
    assert overdue.count("COUNT(") == 2
    assert 'AS "overdue"' in overdue
    # The whole route: the credential (read, its last use), the calendar days, the counts.
    assert len(captured.captured_queries) == 5, [q["sql"][:80] for q in captured.captured_queries]
    assert monitoring.count_overdue(Dossier.objects.filter(agency=agency), now) == {
        "overdue": 3,
        "overdue_without_apology": 2,
    }


# --- Performance -----------------------------------------------------------------------------


@pytest.fixture
def crafted(agency: Agency) -> Agency:
    """Week of Mon 2 - Fri 6 March 2026 (no holidays), seen on Tue 10 March 10:00."""

    def add(status: int, channel: int, submitted: dt.datetime | None, **extra: object) -> None:
        extra.setdefault("accepted_at", submitted)
        dossier_of(agency, status, channel=channel, submitted_at=submitted, **extra)

    # Finished in the range: on time (8 h of work).
    add(S.RESULT_READY, C.ONLINE, at(2026, 3, 2, 9), appointment_at=at(2026, 3, 4, 9),
        finished_at=at(2026, 3, 3, 9))  # fmt: skip
    # Late (24 h).
    add(S.HANDED_OVER, C.ONLINE, at(2026, 3, 2, 10), appointment_at=at(2026, 3, 3, 10),
        finished_at=at(2026, 3, 5, 10))  # fmt: skip
    # Late against the legal deadline although before the apologised date (24 h).
    add(S.RESULT_READY, C.IN_PERSON, at(2026, 3, 3, 8), original_appointment_at=at(2026, 3, 4, 8),
        appointment_at=at(2026, 3, 9, 8), finished_at=at(2026, 3, 6, 8))  # fmt: skip
    # On time; 22 h elapsed of which 4 h paused for a supplement -> 18 h.
    add(S.HANDED_OVER, C.POSTAL, at(2026, 3, 4, 7), appointment_at=at(2026, 3, 6, 17),
        finished_at=at(2026, 3, 6, 15), paused_working_seconds=4 * 3600)  # fmt: skip
    # Overdue now, no apology: a violation.
    add(S.PROCESSING, C.ONLINE, at(2026, 3, 5, 9), appointment_at=at(2026, 3, 6, 9))
    # Overdue now, apologised with a date still ahead.
    add(S.PAYMENT_REQUESTED, C.ONLINE, at(2026, 3, 5, 10),
        original_appointment_at=at(2026, 3, 6, 10), appointment_at=at(2026, 3, 12, 10))  # fmt: skip
    # Paused (supplement requested): never overdue.
    add(S.SUPPLEMENT_REQUESTED, C.ONLINE, at(2026, 3, 5, 11), appointment_at=at(2026, 3, 6, 11),
        paused_at=at(2026, 3, 6, 8))  # fmt: skip
    # Received in the range, finished after it.
    add(S.RESULT_READY, C.ONLINE, at(2026, 3, 6, 8), appointment_at=at(2026, 3, 10, 8),
        finished_at=at(2026, 3, 9, 9))  # fmt: skip
    # Received before the range, overdue now without apology.
    add(S.PROCESSING, C.ONLINE, at(2026, 2, 27, 9), appointment_at=at(2026, 3, 2, 9))
    # A draft is never counted.
    dossier_of(agency, S.DRAFT)
    # Another agency's overdue online dossier.
    make_dossier(make_user(password=None), make_procedure(make_agency()), status=S.PROCESSING,
                 submitted_at=at(2026, 3, 3, 9), appointment_at=at(2026, 3, 4, 9))  # fmt: skip
    return agency


EXPECTED = {
    "from_date": "2026-03-02",
    "to_date": "2026-03-06",
    "received": {"total": 8, "in_person": 1, "online": 6, "postal": 1, "online_share": 0.75},
    "finished": {"total": 4, "on_time": 2, "late": 2, "on_time_share": 0.5},
    "overdue_now": 3,
    "overdue_without_apology_now": 2,
    "average_processing_hours": 18.5,
    # The crafted rows have no events: no payment requests in the period.
    "fees": {"requested": 0, "paid_online": 0, "paid_online_share": None},
}


def test_the_at_risk_scan_works_each_agencys_periods_out_once(agency: Agency) -> None:
    # Hundreds of candidates at 1 M dossiers, all counted from the same moment: the
    # working periods from now are worked out once a scan for calendars alike
    # (WorkingClock), not walked again for every dossier; the calendars' days come
    # with the agencies' ids in one array parameter.
    from unittest import mock

    from bench.scale import CapturedQueries
    from dossiers.deadlines import WorkingCalendar

    now = timezone.now()
    other = make_agency()
    due = [
        dossier_of(
            owner, S.PROCESSING, appointment_at=add_working_seconds(owner, now, minutes * 60)
        )
        for owner in (agency, other)
        for minutes in (5, 200, 470, 479)
    ]
    dossier_of(agency, S.PROCESSING, appointment_at=add_working_seconds(agency, now, 481 * 60))
    expected = {
        d.pk: WorkingCalendar(d.agency).seconds_between(now, d.appointment_at)  # type: ignore[arg-type]
        for d in due
    }
    walked = mock.patch.object(
        WorkingCalendar, "seconds_between", side_effect=AssertionError("walked per dossier")
    )
    clocks = mock.patch.object(monitoring, "WorkingClock", wraps=monitoring.WorkingClock)
    with walked, clocks as clock, CapturedQueries() as captured:
        found = monitoring.at_risk(Dossier.objects.all(), now)
    assert {dossier.pk: left for dossier, left in found} == expected
    assert clock.call_count == 1  # the two agencies keep the national calendar: one clock
    [(days, params)] = [q for q in captured.queries if "dossiers_agencycalendarday" in q[0]]
    assert "= ANY(%s::bigint[])" in days
    assert len(params) == 3  # the agencies' ids, the first and the last date


def test_performance_figures_on_a_crafted_data_set(crafted: Agency) -> None:
    figures = monitoring.performance(
        crafted, dt.date(2026, 3, 2), dt.date(2026, 3, 6), now=at(2026, 3, 10, 10)
    )
    figures["from_date"] = figures["from_date"].isoformat()
    figures["to_date"] = figures["to_date"].isoformat()
    assert figures == EXPECTED


def fee_history(agency: Agency, *, paid_online: bool) -> Dossier:
    """A dossier whose fee the agency requested now, then paid online (the payments
    app's move) or at the counter (the agency resumes processing); and finished."""
    from django.db import transaction

    from dossiers import lifecycle

    now = timezone.now()
    dossier = dossier_of(agency, S.PROCESSING, accepted_at=now - dt.timedelta(days=3),
                         appointment_at=now + dt.timedelta(days=3))  # fmt: skip
    officer = lifecycle.Actor.agency_system("T")
    lifecycle.request_payment(dossier.pk, officer, amount=50_000)
    if paid_online:
        with transaction.atomic():
            lifecycle.record_payment(dossier.pk, lifecycle.Actor.system(), amount=50_000,
                                     payment_id="p", gateway="vnpay", gateway_reference="r",
                                     receipt_number="n")  # fmt: skip
    else:
        lifecycle.start_processing(dossier.pk, officer)
    lifecycle.complete(dossier.pk, officer)
    return dossier


def test_the_performance_reports_queries_do_not_grow_with_requests_or_agencies() -> None:
    # A query per payment request found which move ended it (tens of thousands for a
    # large agency's month), and for all agencies a calendar query per agency.
    today = timezone.localdate()
    rounds = []
    # (agencies, requests, the first agency's fees, all agencies' fees so far)
    for agencies, requests, own, everyone in ((1, 1, (1, 1), (1, 1)), (2, 5, (3, 2), (6, 3))):
        owners = [make_agency() for _ in range(agencies)]
        for n in range(requests):
            fee_history(owners[n % agencies], paid_online=n % 4 == 0)
        counted = []
        for scope, fees in ((owners[0], own), (None, everyone)):
            with CaptureQueriesContext(connection) as captured:
                figures = monitoring.performance(scope, today, today)
            counted.append(len(captured.captured_queries))
            assert (figures["fees"]["requested"], figures["fees"]["paid_online"]) == fees
            assert figures["finished"]["total"] == fees[0]
            assert figures["average_processing_hours"] is not None
        rounds.append(counted)
    # Received, finished (with the sum of their stored working times, the average),
    # the overdue counts, the fee requests (tests/dossiers/test_processing_time.py:
    # with dossiers finished before the working time was stored).
    assert rounds == [[4, 4], [4, 4]]


def test_performance_endpoint_for_the_agency_itself(
    crafted: Agency, agency_client: AgencyClient
) -> None:
    response = agency_client.get("/api/v1/agency/performance?from=2026-03-02&to=2026-03-06")
    assert response.status_code == 200, response
    body = response.json()
    assert body["agency_code"] == crafted.code
    assert body["received"] == EXPECTED["received"]
    assert body["finished"] == EXPECTED["finished"]
    assert body["average_processing_hours"] == 18.5
    # "Now" is the real clock here: every dossier dated March 2026 is long overdue.
    assert body["overdue_now"] == 3


def test_performance_endpoint_for_staff_and_not_for_citizens(crafted: Agency) -> None:
    _, staff_tokens = sign_in(make_user(password=None, is_staff=True))
    staff = ApiClient(token=staff_tokens.access_token)
    path = f"/api/v1/agency/performance?from=2026-03-02&to=2026-03-06&agency={crafted.code}"
    response = staff.get(path)
    assert response.status_code == 200
    assert response.json()["received"]["total"] == 8
    everyone = staff.get("/api/v1/agency/performance?from=2026-03-02&to=2026-03-06")
    assert everyone.json()["agency_code"] is None
    assert everyone.json()["received"]["total"] == 9
    _, citizen_tokens = sign_in(make_user(password=None))
    citizen = ApiClient(token=citizen_tokens.access_token).get(path)
    assert citizen.status_code == 403
    assert ApiClient().get(path).status_code == 401


def test_performance_range_must_be_ordered(agency_client: AgencyClient) -> None:
    response = agency_client.get("/api/v1/agency/performance?from=2026-03-06&to=2026-03-02")
    assert response.status_code == 422
    assert response.json()["details"][0]["code"] == "invalid_range"


@pytest.mark.parametrize(("days", "expected"), [(365, 200), (366, 422)])
def test_performance_range_limit(agency_client: AgencyClient, days: int, expected: int) -> None:
    end = dt.date(2026, 1, 1) + dt.timedelta(days=days)
    response = agency_client.get(f"/api/v1/agency/performance?from=2026-01-01&to={end}")
    assert response.status_code == expected


def test_the_periodic_job_runs_the_scan(agency: Agency) -> None:
    from procrastinate.contrib.django import app

    from dossiers.tasks import scan_deadlines_job

    late = dossier_of(agency, S.PROCESSING, appointment_at=timezone.now() - dt.timedelta(hours=1))
    assert "dossiers.scan_deadlines" in app.tasks
    assert scan_deadlines_job.func(timestamp=0) == {"overdue": 1, "at_risk": 0}
    assert events(late) == ["dossier.overdue"]
