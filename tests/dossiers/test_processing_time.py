"""A finished dossier's working time, stored by the finishing move
(`Dossier.processing_seconds`, dossiers 0027), and the performance report's average
of it in SQL: the same figure as the report worked out before, for stored rows, rows
finished before the column (NULL) and any mix of both."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dossiers import lifecycle, monitoring
from dossiers.deadlines import WorkingCalendar
from dossiers.models import Agency, AgencyCalendarDay, Dossier
from tests.conftest import make_user
from tests.dossiers.conftest import at, frozen
from tests.factories import make_agency, make_dossier, make_procedure

pytestmark = pytest.mark.django_db
S = Dossier.Status
HOUR = 3600
FIRST, LAST = dt.date(2026, 2, 1), dt.date(2026, 3, 31)


def finished(
    agency: Agency,
    accepted: dt.datetime | None,
    at_finish: dt.datetime,
    *,
    paused: int = 0,
    submitted: dt.datetime | None = None,
) -> Dossier:
    """A dossier accepted at `accepted` (None: submitted only), with `paused` working
    seconds spent waiting for supplements, its result ready at `at_finish` (the
    agency's `complete`)."""
    dossier = make_dossier(
        make_user(password=None),
        make_procedure(agency),
        status=S.PROCESSING,
        submitted_at=submitted or accepted,
        accepted_at=accepted,
        appointment_at=at_finish + dt.timedelta(days=30),
        paused_working_seconds=paused,
    )
    with frozen(at_finish):
        lifecycle.complete(dossier.pk, lifecycle.Actor.agency_system("T"))
    dossier.refresh_from_db()
    return dossier


def reported_before(dossier: Dossier) -> int:
    """What the report counted for a finished dossier before dossiers 0027: the
    working seconds from acceptance (else submission) to the finish in the agency's
    calendar now, less the supplements' pauses, never below zero."""
    started = dossier.accepted_at or dossier.submitted_at
    assert started is not None
    assert dossier.finished_at is not None
    spent = WorkingCalendar(dossier.agency).seconds_between(started, dossier.finished_at)
    return max(0, spent - dossier.paused_working_seconds)


@pytest.fixture
def over_tet() -> list[Dossier]:
    """Dossiers finished over Tết 2026 (the national days off of mid-February), with
    supplements' pauses, of an agency on the national calendar and of one with days of
    its own (a make-up Saturday and a day off) inside the spans."""
    national, own = make_agency(), make_agency()
    AgencyCalendarDay.objects.create(
        agency=own, date=dt.date(2026, 2, 28), kind=AgencyCalendarDay.Kind.WORKING_DAY
    )
    AgencyCalendarDay.objects.create(
        agency=own, date=dt.date(2026, 2, 25), kind=AgencyCalendarDay.Kind.DAY_OFF
    )
    dossiers = []
    for agency in (national, own):
        dossiers += [
            # Across Tết, 6 working hours paused for a supplement.
            finished(agency, at(2026, 2, 10, 9, 17), at(2026, 3, 2, 15, 41), paused=6 * HOUR),
            # Accepted in the lunch break, finished in the evening.
            finished(agency, at(2026, 2, 24, 12, 5), at(2026, 2, 27, 19, 30)),
            # Over the agency's own days, finished on a Saturday.
            finished(agency, at(2026, 2, 24, 8), at(2026, 2, 28, 10, 15), paused=HOUR),
            # Submitted only (no acceptance): counted from the submission.
            finished(agency, None, at(2026, 3, 3, 9), submitted=at(2026, 2, 26, 16)),
            # Paused longer than it took: none.
            finished(agency, at(2026, 3, 4, 8), at(2026, 3, 4, 10), paused=5 * HOUR),
        ]
    return dossiers


def test_the_finishing_move_stores_the_working_time_the_report_worked_out(
    over_tet: list[Dossier],
) -> None:
    stored = [dossier.processing_seconds for dossier in over_tet]
    assert stored == [reported_before(dossier) for dossier in over_tet]
    # Tết, the lunch breaks, the agency's own days and the pauses all counted.
    national, own = stored[:5], stored[5:]
    assert national[0] < 8 * HOUR * 14  # 14 weekdays from 10 Feb to 2 Mar, Tết's not worked
    assert national[2] != own[2]  # the day off and the make-up Saturday
    assert national[4] == own[4] == 0


def average(agency: Agency | None) -> float | None:
    return monitoring.performance(agency, FIRST, LAST)["average_processing_hours"]


def test_the_reports_average_is_unchanged_on_stored_old_and_mixed_rows(
    over_tet: list[Dossier],
) -> None:
    expected = {
        scope: round(
            sum(reported_before(d) for d in over_tet if scope in (None, d.agency_id))
            / sum(1 for d in over_tet if scope in (None, d.agency_id))
            / HOUR,
            2,
        )
        for scope in (None, over_tet[0].agency_id, over_tet[5].agency_id)
    }
    agencies = {None: None, **{d.agency_id: d.agency for d in over_tet}}

    def figures() -> dict[int | None, float | None]:
        return {scope: average(agencies[scope]) for scope in expected}

    assert figures() == expected  # every row stored
    # Half finished before the column existed (every other row of each agency).
    Dossier.objects.filter(pk__in=[d.pk for d in over_tet[::2]]).update(processing_seconds=None)
    assert figures() == expected
    Dossier.objects.update(processing_seconds=None)  # all of them
    assert figures() == expected


def test_the_average_of_stored_rows_reads_none_of_them(over_tet: list[Dossier]) -> None:
    # Stored: the finished rows' statement sums them (no row read, no calendar). Rows
    # finished before the column are read and worked out, the calendars' days with them.
    agency = over_tet[0].agency
    counted = []
    for unstored in (False, True):
        if unstored:
            Dossier.objects.filter(pk=over_tet[0].pk).update(processing_seconds=None)
        for scope in (agency, None):
            with CaptureQueriesContext(connection) as captured:
                monitoring.performance(scope, FIRST, LAST)
            counted.append(len(captured.captured_queries))
    # Received, finished (with the stored sum), the overdue counts, the fee requests;
    # then the unstored rows' columns and the calendar days, for all agencies their
    # office hours too.
    assert counted == [4, 4, 6, 7]


def test_a_calendar_changed_after_the_finish_leaves_the_stored_figure(
    over_tet: list[Dossier],
) -> None:
    # The record is the working time as the agency's calendar counted it when the
    # result was ready: a day declared off afterwards does not rewrite it.
    agency = over_tet[0].agency
    before = average(agency)
    AgencyCalendarDay.objects.create(
        agency=agency, date=dt.date(2026, 2, 26), kind=AgencyCalendarDay.Kind.DAY_OFF
    )
    assert average(agency) == before
    stored = [d.processing_seconds for d in over_tet[:5]]
    for dossier in over_tet[:5]:
        dossier.refresh_from_db()
    assert [d.processing_seconds for d in over_tet[:5]] == stored
    # A row finished before the column is worked out in the calendar as it is now.
    Dossier.objects.filter(agency=agency).update(processing_seconds=None)
    assert average(agency) != before
