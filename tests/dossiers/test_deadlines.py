"""Appointment dates in working time: weekends, Tết, evenings, make-up days."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest

from dossiers.deadlines import (
    MAX_SCAN_DAYS,
    WorkingCalendar,
    WorkingClock,
    WorkingTimeline,
    add_working_seconds,
    appointment_for,
)
from dossiers.models import AgencyCalendarDay, Procedure
from tests.factories import make_agency, make_procedure

pytestmark = pytest.mark.django_db
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN)


def procedure(amount: int, unit: str = Procedure.TimeUnit.WORKING_DAYS) -> Procedure:
    return make_procedure(processing_time=amount, processing_unit=unit)


def test_three_working_days_from_tuesday_morning() -> None:
    # Tue 2026-03-10 09:00 + 24 working hours -> Fri 2026-03-13 09:00
    assert appointment_for(procedure(3), at(2026, 3, 10, 9, 0)) == at(2026, 3, 13, 9, 0)


def test_weekend_is_skipped() -> None:
    # Thu 2026-03-12 10:00 + 2 working days -> Mon 2026-03-16 10:00
    assert appointment_for(procedure(2), at(2026, 3, 12, 10, 0)) == at(2026, 3, 16, 10, 0)


def test_evening_submission_starts_next_morning() -> None:
    # Received Mon 20:00: the clock starts Tue 07:00; 1 working day (8 h) -> Tue 17:00
    assert appointment_for(procedure(1), at(2026, 3, 9, 20, 0)) == at(2026, 3, 10, 17, 0)


def test_lunch_break_does_not_count() -> None:
    # 11:00 + 2 working hours: 30 min before lunch, 90 min after 13:30 -> 15:00
    result = appointment_for(procedure(2, Procedure.TimeUnit.WORKING_HOURS), at(2026, 3, 10, 11, 0))
    assert result == at(2026, 3, 10, 15, 0)


def test_tet_2026_is_skipped() -> None:
    # Fri 2026-02-13 09:00 + 1 working day. Mon 16 (Tết eve) to Fri 20 are holidays
    # -> Mon 2026-02-23 09:00
    assert appointment_for(procedure(1), at(2026, 2, 13, 9, 0)) == at(2026, 2, 23, 9, 0)


def test_tet_2027_is_skipped() -> None:
    # Wed 2027-02-03 16:00 + 1 working day: Thu 4 to Wed 10 are holidays
    # -> Thu 2027-02-11 16:00
    assert appointment_for(procedure(1), at(2027, 2, 3, 16, 0)) == at(2027, 2, 11, 16, 0)


def test_national_substitute_working_saturday() -> None:
    # Sat 2026-08-22 is a working day (swapped for Mon 31 Aug).
    calendar = WorkingCalendar(make_agency())
    assert calendar.is_working_day(dt.date(2026, 8, 22))
    assert not calendar.is_working_day(dt.date(2026, 8, 31))
    # Fri 21 Aug 16:00 + 2 working hours -> Sat 22 Aug 08:00
    result = appointment_for(procedure(2, Procedure.TimeUnit.WORKING_HOURS), at(2026, 8, 21, 16, 0))
    assert result == at(2026, 8, 22, 8, 0)


def test_agency_make_up_saturday_and_own_day_off() -> None:
    proc = procedure(1)
    AgencyCalendarDay.objects.create(
        agency=proc.agency, date=dt.date(2026, 3, 14), kind=AgencyCalendarDay.Kind.WORKING_DAY
    )
    AgencyCalendarDay.objects.create(
        agency=proc.agency, date=dt.date(2026, 3, 16), kind=AgencyCalendarDay.Kind.DAY_OFF
    )
    # Fri 13 Mar 09:00 + 1 day -> Sat 14 Mar 09:00 (make-up day)
    assert appointment_for(proc, at(2026, 3, 13, 9, 0)) == at(2026, 3, 14, 9, 0)
    # Sat 14 Mar 09:00 + 1 day: Sun off, Mon 16 off -> Tue 17 Mar 09:00
    assert appointment_for(proc, at(2026, 3, 14, 9, 0)) == at(2026, 3, 17, 9, 0)


def test_ending_exactly_at_closing_time_stays_that_day() -> None:
    result = appointment_for(procedure(8, Procedure.TimeUnit.WORKING_HOURS), at(2026, 3, 10, 7, 0))
    assert result == at(2026, 3, 10, 17, 0)


def test_calendar_days_landing_on_sunday_move_to_monday_opening() -> None:
    # Fri 2026-03-06 10:00 + 2 calendar days = Sun -> Mon 07:00
    result = appointment_for(procedure(2, Procedure.TimeUnit.CALENDAR_DAYS), at(2026, 3, 6, 10, 0))
    assert result == at(2026, 3, 9, 7, 0)


def test_working_seconds_between_excludes_nights_and_weekends() -> None:
    calendar = WorkingCalendar(make_agency())
    # Fri 16:00 -> Mon 08:00 = 1h Friday + 1h Monday
    assert calendar.seconds_between(at(2026, 3, 13, 16, 0), at(2026, 3, 16, 8, 0)) == 2 * 3600
    assert calendar.seconds_between(at(2026, 3, 16, 8, 0), at(2026, 3, 13, 16, 0)) == 0


def test_add_then_measure_round_trips() -> None:
    agency = make_agency()
    start = at(2026, 3, 10, 10, 15)
    end = add_working_seconds(agency, start, 30 * 3600)
    assert WorkingCalendar(agency).seconds_between(start, end) == 30 * 3600


def test_the_worker_builds_this_and_next_years_national_calendars_before_its_first_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.conf import settings

    from dossiers import deadlines

    built: list[int] = []
    monkeypatch.setattr(deadlines, "_national", lambda year: built.append(year))

    deadlines.warm_up()

    year = dt.datetime.now(deadlines.business_tz()).year
    assert built == [year, year + 1]  # the cached calendars the scans use next
    assert "dossiers.deadlines.warm_up" in settings.WORKER_WARM_UP


def test_a_working_clock_counts_as_seconds_between_for_every_end_before_its_horizon() -> None:
    agency = make_agency()
    agency.calendar_days.create(date=dt.date(2026, 3, 16), kind=AgencyCalendarDay.Kind.DAY_OFF)
    calendar = WorkingCalendar(agency)
    # Friday in the lunch break and in the morning (the first period clipped, with
    # microseconds: each period's seconds are truncated as seconds_between does).
    for start in (at(2026, 3, 13, 12, 0), at(2026, 3, 13, 10, 15, 7, 654321)):
        until = at(2026, 3, 18, 9, 0)
        clock = WorkingClock(calendar, start, until)
        ends = [start - dt.timedelta(minutes=5), start]
        ends += [start + dt.timedelta(minutes=m, microseconds=999_999) for m in range(0, 7200, 37)]
        ends = [end for end in ends if end <= until]
        assert len(ends) > 100
        assert [clock.seconds_to(end) for end in ends] == [
            calendar.seconds_between(start, end) for end in ends
        ]
        assert clock.per_day == calendar.seconds_per_day() == 8 * 3600
        with pytest.raises(ValueError, match="beyond"):
            clock.seconds_to(until + dt.timedelta(microseconds=1))


def moments(rng: random.Random, first: dt.datetime, days: int, count: int) -> list[dt.datetime]:
    """Moments over `days` days from `first`: a third on a period's edge or midnight
    (with or without a microsecond either side), the rest anywhere, with fractions;
    half of them in UTC, as the database gives them."""
    edges = [(0, 0), (7, 0), (11, 30), (13, 30), (17, 0), (12, 0), (20, 0)]
    found = []
    for _ in range(count):
        day = first + dt.timedelta(days=rng.randrange(days))
        if rng.random() < 0.35:
            hour, minute = rng.choice(edges)
            moment = day.replace(hour=hour, minute=minute)
            moment += dt.timedelta(microseconds=rng.choice([0, 0, 1, -1]))
        else:
            moment = day + dt.timedelta(
                seconds=rng.randrange(86400), microseconds=rng.randrange(10**6)
            )
        found.append(moment.astimezone(dt.UTC) if rng.random() < 0.5 else moment)
    return found


def test_a_working_timeline_counts_as_seconds_between_for_random_spans() -> None:
    # Spans over Tết 2026 (16-20 Feb off), 30/4-1/5, weekends, lunch breaks, with an
    # agency's own day off and make-up Saturday, from a few seconds to ten weeks: the
    # same seconds as the walk, each one (the first and last periods truncated alone).
    agency = make_agency()
    agency.calendar_days.create(date=dt.date(2026, 3, 16), kind=AgencyCalendarDay.Kind.DAY_OFF)
    agency.calendar_days.create(date=dt.date(2026, 3, 21), kind=AgencyCalendarDay.Kind.WORKING_DAY)
    calendar = WorkingCalendar(agency)
    first, last = dt.date(2026, 1, 25), dt.date(2026, 5, 31)
    timeline = WorkingTimeline(calendar, first, last)
    rng = random.Random(20261207)
    starts = moments(rng, at(2026, 2, 1), 95, 3000)
    spans = []
    for start in starts:
        length = rng.choice(
            [rng.randrange(3600), rng.randrange(3 * 86400), rng.randrange(70 * 86400)]
        )
        spans.append(
            (start, start + dt.timedelta(seconds=length, microseconds=rng.randrange(10**6)))
        )
    spans += list(
        zip(starts[:500], moments(rng, at(2026, 2, 1), 95, 500), strict=True)
    )  # some back
    spans += [(start, start) for start in starts[:20]]
    assert sum(1 for start, end in spans if end < start) > 100
    assert [timeline.seconds_between(start, end) for start, end in spans] == [
        calendar.seconds_between(start, end) for start, end in spans
    ]
    # Not a sum of rounded prefixes: a start with a fraction in a period, its end in
    # another, is one second less than the prefixes' difference would say.
    start, end = at(2026, 3, 10, 9, 0, 0, 500_000), at(2026, 3, 11, 8, 0)
    assert (
        timeline.seconds_between(start, end) == 7 * 3600 - 1 == calendar.seconds_between(start, end)
    )
    assert timeline.seconds_between(at(2026, 2, 13, 16, 0), at(2026, 2, 23, 8, 0)) == 2 * 3600


def test_a_working_timeline_asks_the_calendar_what_its_days_do_not_hold() -> None:
    agency = make_agency()
    calendar = WorkingCalendar(agency)
    # Its days end on Friday 2026-03-13: a span ending that evening needs Monday's
    # opening to stop the walk, and a start before its days has none of its periods.
    timeline = WorkingTimeline(calendar, dt.date(2026, 3, 9), dt.date(2026, 3, 13))
    cases = [
        (at(2026, 3, 10, 9, 0), at(2026, 3, 13, 20, 0)),  # past its last period
        (at(2026, 3, 6, 16, 0), at(2026, 3, 10, 9, 0)),  # starts before its first day
        (at(2026, 3, 10, 9, 0), at(2026, 3, 13, 16, 0)),  # within: from its periods
    ]
    assert [timeline.seconds_between(s, e) for s, e in cases] == [
        (6 + 8 + 8 + 8) * 3600,  # Tuesday from 9:00, three whole days
        (1 + 8 + 2) * 3600,  # Friday's last hour, Monday, Tuesday to 9:00
        (6 + 8 + 8 + 7) * 3600,
    ]
    # Office hours out of order: the walk is not a sorted sequence, the calendar counts.
    unordered = WorkingCalendar.for_office_hours(
        {agency.pk: [["13:30", "17:00"], ["07:00", "11:30"]]},
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 31),
    )[agency.pk]
    timeline = WorkingTimeline(unordered, dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert not timeline.ordered
    rng = random.Random(7)
    spans = list(
        zip(
            moments(rng, at(2026, 3, 2), 20, 200),
            moments(rng, at(2026, 3, 2), 20, 200),
            strict=True,
        )
    )
    assert [timeline.seconds_between(s, e) for s, e in spans] == [
        unordered.seconds_between(s, e) for s, e in spans
    ]
    # No working time at all: the calendar's walk gives up, and so does the timeline.
    closed = WorkingCalendar.for_office_hours(
        {agency.pk: []}, dt.date(2026, 3, 1), dt.date(2026, 3, 31)
    )[agency.pk]
    timeline = WorkingTimeline(closed, dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    with pytest.raises(ValueError, match="three years"):
        timeline.seconds_between(at(2026, 3, 10, 9, 0), at(2026, 3, 11, 9, 0))
    # A span longer than the walk's limit raises as the walk does.
    long_timeline = WorkingTimeline(calendar, dt.date(2026, 1, 1), dt.date(2029, 12, 31))
    start = at(2026, 1, 5, 9, 0)
    end = start + dt.timedelta(days=MAX_SCAN_DAYS + 5)
    with pytest.raises(ValueError, match="three years"):
        calendar.seconds_between(start, end)
    with pytest.raises(ValueError, match="three years"):
        long_timeline.seconds_between(start, end)
