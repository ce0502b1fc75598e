"""Working-time arithmetic for appointment dates (ngày hẹn trả).

Working time is the agency's office hours (typically 7:00-11:30 and 13:30-17:00,
8 hours) on working days, in business time (Asia/Ho_Chi_Minh). A day is a
working day when the agency's own calendar says so (a day off, or a make-up
working day), else when it is a weekday that is not a Vietnamese public holiday
from the `holidays` package (Tết, Hùng Kings, 30/4, 1/5, National Day and the
substitute days off), or a Saturday/Sunday the government made a working day.

The clock only runs inside working periods: a dossier received in the evening
starts counting at the next morning's opening.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings

from backend.any_of import IdIn
from dossiers.models import Agency, AgencyCalendarDay, Procedure

# A safety net against a calendar with no working time at all (bad data).
MAX_SCAN_DAYS = 3 * 366


def business_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


@functools.lru_cache(maxsize=16)
def _national(year: int) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    calendar = holidays.country_holidays("VN", years=year)
    workdays = frozenset(d for d in getattr(calendar, "weekend_workdays", set()) if d.year == year)
    return frozenset(calendar.keys()), workdays


def warm_up() -> None:
    """Build this year's and next year's national calendars (settings.WORKER_WARM_UP).

    The first use in a process pays for the `holidays` package's Vietnamese calendar
    (the lunar dates of Tết among them): 60 ms on an idle 2-core machine, 268 ms
    under load, which was the p99 of the deadline scans. The worker pays it before
    it takes jobs instead.
    """
    year = dt.datetime.now(business_tz()).year
    _national(year)
    _national(year + 1)


class WorkingCalendar:
    """The working periods of one agency, with its calendar loaded once."""

    def __init__(self, agency: Agency, overrides: dict[dt.date, bool] | None = None) -> None:
        """`overrides` (day -> is a working day), if given, instead of the agency's
        calendar days from the database (`for_agencies`)."""
        if overrides is None:
            overrides = {
                day.date: day.kind == AgencyCalendarDay.Kind.WORKING_DAY
                for day in AgencyCalendarDay.objects.filter(agency=agency)
            }
        self._set(agency.office_hours, overrides)

    def _set(self, office_hours: Iterable[Sequence[str]], overrides: dict[dt.date, bool]) -> None:
        self.tz = business_tz()
        self.periods = [
            (dt.time.fromisoformat(start), dt.time.fromisoformat(end))
            for start, end in office_hours
        ]
        self.overrides = overrides

    @classmethod
    def for_agencies(
        cls, agencies: Iterable[Agency], first: dt.date, last: dt.date
    ) -> dict[int, WorkingCalendar]:
        """The calendars of `agencies` by agency id, their own days loaded in one query
        for the dates `first` to `last` only: right for moments in those dates."""
        return cls.for_office_hours(
            {agency.pk: agency.office_hours for agency in agencies}, first, last
        )

    @classmethod
    def for_office_hours(
        cls, office_hours: Mapping[int, Iterable[Sequence[str]]], first: dt.date, last: dt.date
    ) -> dict[int, WorkingCalendar]:
        """`for_agencies` from the agencies' ids and office hours (the at-risk scan reads
        every agency's: two columns, not 60 model instances)."""
        overrides: dict[int, dict[dt.date, bool]] = {pk: {} for pk in office_hours}
        # The ids as one array parameter (IdIn): `agency_id__in` prepared each in Python.
        days = AgencyCalendarDay.objects.filter(
            IdIn("agency_id", list(overrides)), date__gte=first, date__lte=last
        ).values_list("agency_id", "date", "kind")
        for agency_id, date, kind in days:
            overrides[agency_id][date] = kind == AgencyCalendarDay.Kind.WORKING_DAY
        calendars = {}
        for pk, hours in office_hours.items():
            calendar = cls.__new__(cls)
            calendar._set(hours, overrides[pk])
            calendars[pk] = calendar
        return calendars

    def alike(self) -> tuple[Any, ...]:
        """What makes two calendars count the same working time (most agencies keep the
        national one): their periods and their own days."""
        return (tuple(self.periods), tuple(sorted(self.overrides.items())))

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        public_holidays, weekend_workdays = _national(day.year)
        if day in weekend_workdays:
            return True
        return day.weekday() < 5 and day not in public_holidays

    def periods_from(self, moment: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Working periods (aware datetimes) from `moment` on, the first one clipped."""
        local = moment.astimezone(self.tz)
        day = local.date()
        for _ in range(MAX_SCAN_DAYS):
            if self.is_working_day(day):
                for start_time, end_time in self.periods:
                    start = dt.datetime.combine(day, start_time, tzinfo=self.tz)
                    end = dt.datetime.combine(day, end_time, tzinfo=self.tz)
                    if end <= local:
                        continue
                    yield max(start, local), end
            day += dt.timedelta(days=1)
        raise ValueError("no working time within three years: check the agency calendar")

    def seconds_per_day(self) -> int:
        return sum(
            int(
                (
                    dt.datetime.combine(dt.date.min, end) - dt.datetime.combine(dt.date.min, start)
                ).total_seconds()
            )
            for start, end in self.periods
        )

    def add_seconds(self, start: dt.datetime, seconds: int) -> dt.datetime:
        """The moment `seconds` of working time after `start`."""
        remaining = seconds
        for period_start, period_end in self.periods_from(start):
            available = int((period_end - period_start).total_seconds())
            if remaining <= available:
                return period_start + dt.timedelta(seconds=remaining)
            remaining -= available
        raise AssertionError("unreachable")  # periods_from raises first

    def seconds_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Working seconds in [start, end) (0 when end <= start)."""
        if end <= start:
            return 0
        total = 0
        for period_start, period_end in self.periods_from(start):
            if period_start >= end:
                break
            total += int((min(period_end, end) - period_start).total_seconds())
        return total


class WorkingClock:
    """`calendar.seconds_between(start, end)` for many ends before `until`.

    The at-risk scan asks it of every candidate (hundreds at 1 M dossiers), all from the
    same `start`: the working periods from `start` are worked out once, with the
    seconds before each, and an end finds its period by bisection. The same sum as
    `seconds_between` (each period's seconds truncated as it truncates them).
    """

    def __init__(self, calendar: WorkingCalendar, start: dt.datetime, until: dt.datetime) -> None:
        self.start = start
        self.until = until
        self.per_day = calendar.seconds_per_day()
        self._starts: list[dt.datetime] = []
        self._periods: list[tuple[dt.datetime, dt.datetime, int]] = []
        before = 0
        for period_start, period_end in calendar.periods_from(start):
            if period_start >= until:
                break
            self._starts.append(period_start)
            self._periods.append((period_start, period_end, before))
            before += int((period_end - period_start).total_seconds())

    def seconds_to(self, end: dt.datetime) -> int:
        """Working seconds in [start, end): `end` must be before `until`."""
        if end > self.until:
            raise ValueError("end is beyond this clock's periods")
        if end <= self.start:
            return 0
        found = bisect.bisect_left(self._starts, end)  # the periods that start before `end`
        if not found:
            return 0
        period_start, period_end, before = self._periods[found - 1]
        return before + int((min(period_end, end) - period_start).total_seconds())


class WorkingTimeline:
    """`calendar.seconds_between(start, end)` for many spans in the days `first` to
    `last`: two bisections a span, not a walk of its days.

    The performance report asks it of every finished dossier of the period (thousands
    for all agencies, about 15 days each). The working periods of the days are worked
    out once, with the whole seconds of the periods before each (prefix sums). A span's
    first and last periods are counted as `seconds_between` counts them (each clipped
    period's seconds truncated on its own: the difference of two truncated prefixes
    would be a second off when the moments have fractions), the ones between from the
    sums. So the result is `seconds_between`'s to the second; what the timeline cannot
    answer alone it asks `seconds_between`: a start before `first`, an end with no
    working period after it by `last` (where `seconds_between` stops looking), spans
    near MAX_SCAN_DAYS (where it raises), and office hours out of order or overlapping
    (where its walk is not a sorted sequence).
    """

    def __init__(self, calendar: WorkingCalendar, first: dt.date, last: dt.date) -> None:
        self.calendar = calendar
        self.first = first
        self._starts: list[dt.datetime] = []
        self._ends: list[dt.datetime] = []
        self._days: list[int] = []  # each period's day, as an ordinal
        self._before: list[int] = []  # the whole seconds of the periods before each
        hours = calendar.periods
        self.ordered = all(start < end for start, end in hours) and all(
            hours[k][1] <= hours[k + 1][0] for k in range(len(hours) - 1)
        )
        if not self.ordered:
            return
        tz = calendar.tz
        before = 0
        day = first
        while day <= last:
            if calendar.is_working_day(day):
                for start_time, end_time in hours:
                    start = dt.datetime.combine(day, start_time, tzinfo=tz)
                    end = dt.datetime.combine(day, end_time, tzinfo=tz)
                    self._starts.append(start)
                    self._ends.append(end)
                    self._days.append(day.toordinal())
                    self._before.append(before)
                    before += int((end - start).total_seconds())
            day += dt.timedelta(days=1)

    def seconds_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Working seconds in [start, end), as `calendar.seconds_between` counts them."""
        if end <= start:
            return 0
        local = start.astimezone(self.calendar.tz)
        day = local.date()
        if not self.ordered or day < self.first:
            return self.calendar.seconds_between(start, end)
        # `periods_from` skips the periods that end at or before the start; the walk
        # stops at the first period that starts at or after the end.
        first = bisect.bisect_right(self._ends, local)
        stop = bisect.bisect_left(self._starts, end)
        if stop == len(self._starts) or self._days[stop] - day.toordinal() >= MAX_SCAN_DAYS:
            return self.calendar.seconds_between(start, end)
        if stop <= first:
            return 0
        first_start = max(self._starts[first], local)
        if stop == first + 1:
            return int((min(self._ends[first], end) - first_start).total_seconds())
        last = stop - 1
        return (
            int((self._ends[first] - first_start).total_seconds())
            + self._before[last]
            - self._before[first + 1]
            + int((min(self._ends[last], end) - self._starts[last]).total_seconds())
        )


def appointment_for(procedure: Procedure, received_at: dt.datetime) -> dt.datetime:
    """The appointment date of a dossier of `procedure` received at `received_at`."""
    calendar = WorkingCalendar(procedure.agency)
    amount = procedure.processing_time
    unit = procedure.processing_unit
    if unit == Procedure.TimeUnit.WORKING_HOURS:
        return calendar.add_seconds(received_at, amount * 3600)
    if unit == Procedure.TimeUnit.WORKING_DAYS:
        return calendar.add_seconds(received_at, amount * calendar.seconds_per_day())
    # Calendar days: the same time N days later, moved to working time if it falls outside.
    target = received_at.astimezone(calendar.tz) + dt.timedelta(days=amount)
    first_start, _ = next(calendar.periods_from(target))
    return first_start


def working_seconds_between(agency: Agency, start: dt.datetime, end: dt.datetime) -> int:
    return WorkingCalendar(agency).seconds_between(start, end)


def processing_seconds(spent: int, paused: int) -> int:
    """A finished dossier's processing time: the working seconds `spent` from its
    acceptance (else submission) to the finish, less those `paused` for supplements
    (never below zero). What `lifecycle.complete` stores and the performance report
    averages (monitoring.py), one formula for both."""
    return max(0, spent - paused)


def add_working_seconds(agency: Agency, start: dt.datetime, seconds: int) -> dt.datetime:
    return WorkingCalendar(agency).add_seconds(start, seconds)
