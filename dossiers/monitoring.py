"""Deadline monitoring and the indicators agencies are judged by.

Definitions (one place, used by the periodic job, the agency API and the admin):

* deadline: `original_appointment_at` if the agency apologised (form 04), else
  `appointment_at`. Supplement pauses move it; apologies do not.
* overdue: the clock runs (status 2, 4 or 6: a dossier waiting for the
  citizen's supplement is paused, never overdue) and the deadline has passed.
* overdue without apology (a violation): the clock runs and even the latest
  promised date (`appointment_at`, moved by apologies) has passed, i.e. no
  apology was issued, or the apology's new date passed too.
* at risk: the clock runs, not overdue, and less than one working day is left.
* on time: finished (status 9 or 10) no later than the deadline.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.utils import timezone

from backend.any_of import IdIn
from backend.errors import ApiError
from dossiers import lifecycle
from dossiers.deadlines import (
    WorkingCalendar,
    WorkingClock,
    WorkingTimeline,
    business_tz,
    processing_seconds,
)
from dossiers.events import EventType
from dossiers.models import RUNNING_CONDITION, Agency, Dossier, DossierEvent

logger = logging.getLogger(__name__)

S = Dossier.Status
RUNNING = sorted(int(s) for s in lifecycle.CLOCK_RUNNING)
FINISHED = [int(S.RESULT_READY), int(S.HANDED_OVER)]
# A working day can stretch over Tết: look this far ahead for at-risk candidates.
AT_RISK_LOOKAHEAD = dt.timedelta(days=15)
# The average processing time's timelines run this far past the period's last finish
# (`average_processing_hours`).
TIMELINE_LOOKAHEAD = dt.timedelta(days=15)
# `count_at_risk` counts in SQL the dossiers due this long or more before one working
# day from now, and checks those due within it either side one by one.
AT_RISK_MARGIN = dt.timedelta(minutes=1)
# What `at_risk` reads of a dossier: what its callers use (the scan and the admin the
# id, the agency's monitoring MonitoredDossierOut's columns) and its agency's key for
# the calendar. Not the form, nor the agency's and procedure's rows: read whole, with
# every moment parsed, they were three quarters of the scan's time.
AT_RISK_FIELDS = (
    "id",
    "code",
    "status",
    "agency_id",
    "appointment_at",
    "original_appointment_at",
    "overdue_at",
    "apologised_at",
)


def deadline() -> Coalesce:
    """A dossier's deadline, as the partial indexes on running dossiers write it."""
    return Coalesce("original_appointment_at", "appointment_at")


def with_deadline(queryset: QuerySet[Dossier]) -> QuerySet[Dossier]:
    return queryset.annotate(deadline=deadline())


def after(queryset: QuerySet[Dossier], moment: dt.datetime, key: Any) -> QuerySet[Dossier]:
    """The dossiers after (deadline, id) = (moment, key), the order of every list here:
    a row value, so a scan of a deadline index starts there (an index condition)."""
    return queryset.filter(TupleGreaterThan(Tuple(deadline(), "id"), (moment, key)))


def running(queryset: QuerySet[Dossier] | None = None) -> QuerySet[Dossier]:
    """Dossiers whose clock runs, with their `deadline`. The condition is that of
    the partial index dossier_running_deadline (dossiers/models.py), written the
    same way, so the scans read the running dossiers only."""
    base = Dossier.objects.all() if queryset is None else queryset
    return with_deadline(base.filter(RUNNING_CONDITION))


def overdue(
    queryset: QuerySet[Dossier] | None = None, now: dt.datetime | None = None
) -> QuerySet[Dossier]:
    # On the deadline expression (= the OR of the definition): the partial index
    # dossier_running_deadline answers it.
    return running(queryset).filter(LessThan(F("deadline"), now or timezone.now()))


def overdue_without_apology(
    queryset: QuerySet[Dossier] | None = None, now: dt.datetime | None = None
) -> QuerySet[Dossier]:
    return running(queryset).filter(appointment_at__lt=now or timezone.now())


def count_overdue(
    queryset: QuerySet[Dossier] | None = None,
    now: dt.datetime | None = None,
    *,
    every_agency: bool = False,
) -> dict[str, int]:
    """How many of `queryset` are `overdue` and `overdue_without_apology`, in one
    statement (the agency's summary, polled by every agency; it was two).

    A violation is always overdue: `appointment_at` is never before the deadline (an
    apology only moves it later, a supplement moves both alike; the CHECK constraint
    dossier_original_appointment_not_after, migration 0023, makes it a fact of every
    row). So the dossiers counted are those past their deadline, and the violations a
    filtered count among them.

    `every_agency` (the report of all agencies, no agency filter): the deadline's range
    alone, on dossier_running_deadline: the overdue dossiers only (19 k of 75 k running
    at 1 M dossiers: 54 -> 14 ms best of 3). Of one agency the condition is the OR of
    the two definitions' (the same rows, by the constraint), whose plan reads the
    agency's running dossiers on (agency, status): with the range alone the planner
    ANDed the agency's whole index into a bitmap (13 -> 46 ms for the largest agency).
    """
    now = now or timezone.now()
    passed = Q(LessThan(F("deadline"), now))
    violation = Q(appointment_at__lt=now)
    counted = running(queryset).filter(passed if every_agency else passed | violation)
    counts = counted.aggregate(
        overdue=Count("pk", filter=passed),
        overdue_without_apology=Count("pk", filter=violation),
    )
    return {name: int(value) for name, value in counts.items()}


def at_risk(
    queryset: QuerySet[Dossier] | None = None,
    now: dt.datetime | None = None,
    agency: Agency | None = None,
    *,
    limit: int | None = None,
) -> list[tuple[Dossier, int]]:
    """Running dossiers with less than one working day left, with the seconds left.

    The candidates are read in a window bounded by the calendars: a dossier is at
    risk exactly when its deadline comes before one working day from now in its
    agency's calendar, so no deadline at or after the latest such moment over the
    agencies (usually the next working day's same hour) can be at risk. A window of
    `AT_RISK_LOOKAHEAD` instead read every dossier due in the next two weeks
    (20,791 at 1 M dossiers, each through the calendar in Python).

    `agency`: the one agency whose dossiers are asked for (its monitoring): only its
    calendar is read, and the window ends one working day from now in it.

    `limit` (with `agency` only): at most the first `limit` of the list, reading at
    most `limit` candidates (`LIMIT` in SQL; a page of the agency's at-risk list, of
    thousands at national scale). One calendar's working seconds left only grow with
    the deadline, so the candidates at risk come first in (deadline, id) order and
    the first `limit` candidates hold the list's first `limit` (`count_at_risk` rests
    on the same). Over several agencies' calendars they do not: a short-day agency's
    dossier not at risk can come before another's at risk.
    """
    if limit is not None and agency is None:
        raise ValueError("a limit needs the one agency whose calendar orders the list")
    now = now or timezone.now()
    calendars = _calendars(now, agency)
    until = min(_one_day_after(calendars, now), now + AT_RISK_LOOKAHEAD)
    candidates = running(queryset)
    if agency is not None:
        candidates = candidates.filter(agency_id=agency.pk)
    candidates = (
        candidates.filter(GreaterThanOrEqual(F("deadline"), now), LessThan(F("deadline"), until))
        .select_related(None)  # the caller's (the admin's agency and procedure) are not read
        .only(*AT_RISK_FIELDS)
        .order_by("deadline", "id")
    )
    if limit is not None:
        candidates = candidates[:limit]
    result = []
    # Per agency, its working periods from now to `until`.
    clocks = PerCalendar(calendars, lambda calendar: WorkingClock(calendar, now, until))
    for dossier in candidates:
        if dossier.agency_id not in calendars:
            # Every agency's calendar is loaded: one missing was created since (read now).
            _calendar(calendars, dossier.agency)
        clock = clocks.get(dossier.agency_id)
        left = clock.seconds_to(dossier.deadline)  # type: ignore[attr-defined]
        if left < clock.per_day:
            result.append((dossier, left))
    return result


def count_at_risk(
    agency: Agency, queryset: QuerySet[Dossier] | None = None, now: dt.datetime | None = None
) -> int:
    """How many of `agency`'s dossiers in `queryset` `at_risk` lists, without reading them.

    Working seconds left only grow with the deadline, and reach one working day at
    `mark` (`add_seconds`, as `at_risk`'s window is bounded): the dossiers at risk are
    those due before it. Those due `AT_RISK_MARGIN` or more before it are counted by
    the database, in the statement that counts those due within it either side; these
    few, if any, are read and checked as `at_risk` checks each (its clock, whose
    periods are counted in whole seconds, and its window's end), so the count is the
    pages' total. The summary, polled by every agency, read and walked a working day
    of the agency's dossiers and every agency's calendar.
    """
    now = now or timezone.now()
    calendar = _calendars(now, agency)[agency.pk]
    per_day = calendar.seconds_per_day()
    if per_day <= 0:  # no working time: `at_risk` finds nothing either
        return 0
    mark = calendar.add_seconds(now, per_day)
    upper = min(mark + AT_RISK_MARGIN, now + AT_RISK_LOOKAHEAD)
    lower = max(min(mark - AT_RISK_MARGIN, upper), now)
    due = running(queryset).filter(
        GreaterThanOrEqual(F("deadline"), now), LessThan(F("deadline"), upper), agency_id=agency.pk
    )
    near = Q(GreaterThanOrEqual(F("deadline"), lower))
    counts = due.aggregate(certain=Count("pk", filter=~near), around=Count("pk", filter=near))
    if not counts["around"]:  # most polls: none is due within minutes of the mark
        return int(counts["certain"])
    clock = WorkingClock(calendar, now, upper)
    around = due.filter(near).values_list("deadline", flat=True)  # type: ignore[misc]
    return int(counts["certain"]) + sum(1 for d in around if clock.seconds_to(d) < per_day)


Counting = TypeVar("Counting")


class PerCalendar(Generic[Counting]):
    """`build(calendar)` of each agency's calendar in `calendars`, built once for the
    calendars alike (most agencies keep the national one) and found by agency after the
    first: what `at_risk` (a `WorkingClock`) and `average_processing_hours` (a
    `WorkingTimeline`) count each dossier's working time with."""

    def __init__(
        self,
        calendars: dict[int, WorkingCalendar],
        build: Callable[[WorkingCalendar], Counting],
    ) -> None:
        self.calendars = calendars  # read as `get` asks: a calendar added later is found
        self._build = build
        self._by_agency: dict[int, Counting] = {}
        self._alike: dict[tuple[Any, ...], Counting] = {}

    def get(self, agency_id: int) -> Counting:
        found = self._by_agency.get(agency_id)
        if found is None:
            calendar = self.calendars[agency_id]
            key = calendar.alike()
            if key not in self._alike:
                self._alike[key] = self._build(calendar)
            found = self._by_agency[agency_id] = self._alike[key]
        return found


def _calendars(now: dt.datetime, agency: Agency | None) -> dict[int, WorkingCalendar]:
    """The calendars `at_risk` counts with, their own days loaded for its window: of
    `agency` only if given (its row is at hand: one query), else of every agency."""
    first = (now - dt.timedelta(days=1)).date()
    last = (now + AT_RISK_LOOKAHEAD + dt.timedelta(days=1)).date()
    if agency is not None:
        return WorkingCalendar.for_agencies([agency], first, last)
    return WorkingCalendar.for_office_hours(
        dict(Agency.objects.values_list("id", "office_hours")), first, last
    )


def _one_day_after(calendars: dict[int, WorkingCalendar], now: dt.datetime) -> dt.datetime:
    """The latest moment one working day after `now` over `calendars` (`now` if none
    has working hours). Calendars alike (most agencies keep the national one) are
    worked out once."""
    latest = now
    done: set[tuple[Any, ...]] = set()
    for calendar in calendars.values():
        per_day = calendar.seconds_per_day()
        key = calendar.alike()
        if per_day <= 0 or key in done:
            continue
        done.add(key)
        latest = max(latest, calendar.add_seconds(now, per_day))
    return latest


def _calendar(calendars: dict[int, WorkingCalendar], agency: Agency) -> WorkingCalendar:
    """The agency's calendar, loaded once per scan (one query per agency, not per
    dossier: `setdefault` would build, and query, one for every dossier)."""
    if agency.pk not in calendars:
        calendars[agency.pk] = WorkingCalendar(agency)
    return calendars[agency.pk]


def scan_deadlines(now: dt.datetime | None = None) -> dict[str, int]:
    """Mark newly overdue dossiers and warn of those at risk (each event once)."""
    now = now or timezone.now()
    marked = warned = 0
    for dossier_id in overdue(now=now).filter(overdue_at__isnull=True).values_list("pk", flat=True):
        try:
            if lifecycle.mark_overdue(dossier_id) is not None:
                marked += 1
        except ApiError:  # changed status since the query: nothing to mark
            continue
    for dossier, left in at_risk(
        Dossier.objects.filter(deadline_warned_at__isnull=True, overdue_at__isnull=True), now
    ):
        try:
            if lifecycle.warn_deadline_at_risk(dossier.pk, seconds_left=left) is not None:
                warned += 1
        except ApiError:
            continue
    if marked or warned:
        logger.info("deadline scan: %s overdue, %s at risk", marked, warned)
    return {"overdue": marked, "at_risk": warned}


def _day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = business_tz()
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def fee_requests(agency: Agency | None, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Payment requests (status 6) made in the period by `agency` (None: by every
    agency), and how many were paid online.

    A request counts as paid online when the move that ended its status 6 was
    `dossier.payment_received` (written when the payments app confirms it).

    One statement: the move that ended each request is its dossier's first event
    after it leaving status 6, a subquery per request row reading the (dossier, seq)
    index from the request's seq on (`LIMIT 1`). It was one query per request: tens
    of thousands for a large agency's month. The period's requests are read on their
    own partial indexes: an agency's by the agency beside each request
    (`event_agency_payment_requests`, migration 0029; reading every agency's and each
    request's dossier by key to keep the agency's was 25 k dossiers for the largest
    agency's month at 1 M dossiers), every agency's by moment
    (`dossier_event_payment_requests`, migration 0022). A request's agency is that of
    its dossier when it was made (a dossier never changes agency today).
    """
    ended_by = (
        DossierEvent.objects.filter(
            dossier_id=OuterRef("dossier_id"),
            seq__gt=OuterRef("seq"),
            status_before=S.PAYMENT_REQUESTED,
        )
        .order_by("seq")
        .values("type")[:1]
    )
    requests = DossierEvent.objects.filter(
        type=EventType.DOSSIER_PAYMENT_REQUESTED, created_at__gte=start, created_at__lt=end
    )
    if agency is not None:
        requests = requests.filter(agency_id=agency.pk)
    counts = requests.annotate(ended_by=Subquery(ended_by)).aggregate(
        # `seq` (never null), not the key: the requests' index holds it, so the
        # rows are counted from the index alone (an index-only scan).
        requested=Count("seq"),
        paid_online=Count("seq", filter=Q(ended_by=EventType.DOSSIER_PAYMENT_RECEIVED)),
    )
    requested, paid_online = int(counts["requested"]), int(counts["paid_online"])
    return {
        "requested": requested,
        "paid_online": paid_online,
        "paid_online_share": _ratio(paid_online, requested),
    }


def unstored_processing_seconds(
    finished: QuerySet[Dossier], agency: Agency | None, *, with_id: bool = False
) -> list[tuple[Any, int]]:
    """The working time of each of `finished` that has no `processing_seconds` stored
    (finished before the column existed), with its id if `with_id` (else None: the
    finished dossiers' index does not hold it), worked out as the report did before: from
    acceptance (else submission) to the finish, less the time paused for supplements,
    in the agency's calendar as it is now. A dossier with neither start is left out.

    Reads five columns of each dossier, not the dossier and its agency as model
    instances; the calendars are read once for all (`agency`'s, else those of the
    agencies found), their own days for the dates the dossiers span only. Each span's
    working time is `WorkingCalendar.seconds_between`'s, from a `WorkingTimeline`.
    """
    spans = []
    columns = ["agency_id", "accepted_at", "submitted_at", "finished_at", "paused_working_seconds"]
    rows = finished.filter(processing_seconds__isnull=True).values_list(
        *(["pk", *columns] if with_id else columns)
    )
    for row in rows:
        key, (agency_id, accepted_at, submitted_at, finished_at, paused) = (
            (row[0], row[1:]) if with_id else (None, row)
        )
        started = accepted_at or submitted_at
        if started is None or finished_at is None:
            continue
        spans.append((key, agency_id, started, finished_at, paused))
    if not spans:
        return []
    tz = business_tz()
    # A day before and after: the days a span's working periods are looked up in.
    first = min(span[2] for span in spans).astimezone(tz).date() - dt.timedelta(days=1)
    last = max(span[3] for span in spans).astimezone(tz).date() + dt.timedelta(days=1)
    if agency is not None:
        calendars = WorkingCalendar.for_agencies([agency], first, last)
    else:
        ids = sorted({span[1] for span in spans})
        hours = dict(Agency.objects.filter(IdIn("id", ids)).values_list("id", "office_hours"))
        calendars = WorkingCalendar.for_office_hours(hours, first, last)
    # Each calendar's working periods over those days as prefix sums (a timeline), once
    # for calendars alike (most agencies keep the national one): a dossier is two
    # look-ups, not a walk of its days (15 on average, half the report's time). The
    # timeline runs a fortnight past the last day, where a span's walk may look for the
    # next working period after its end (past Tết's days off).
    until = last + TIMELINE_LOOKAHEAD
    timelines = PerCalendar(calendars, lambda calendar: WorkingTimeline(calendar, first, until))
    return [
        (key, processing_seconds(timelines.get(agency_id).seconds_between(started, ended), paused))
        for key, agency_id, started, ended, paused in spans
    ]


def average_processing_hours(
    finished: QuerySet[Dossier], agency: Agency | None, stored: dict[str, Any] | None = None
) -> float | None:
    """The mean working time from acceptance (else submission) to the finish, less the
    time paused for supplements, of `finished`, in hours.

    The dossiers finished since dossiers 0027 have it stored (`processing_seconds`,
    written by the finishing move): summed and counted in SQL (`STORED_PROCESSING`),
    in `stored` if the caller's statement already did (`performance`, on the finished
    dossiers' index). Only the others, finished before, are read and worked out one by
    one (`unstored_processing_seconds`), and not even read when none is (`unstored`
    0), so the answer is the one before for old data. All agencies' month was a
    timeline look-up per finished dossier (7.3-7.7 s a call at 1 M dossiers).
    """
    if stored is None:
        stored = finished.aggregate(**STORED_PROCESSING)
    total, count = int(stored["processing_total"] or 0), int(stored["processing_count"])
    if stored["unstored"]:
        unstored = unstored_processing_seconds(finished, agency)
        total += sum(seconds for _, seconds in unstored)
        count += len(unstored)
    if not count:
        return None
    return round(total / count / 3600, 2)


# What `average_processing_hours` asks of the finished dossiers in SQL: the stored
# working times' sum and count, and how many have none stored (`finished_at`, never
# null in the finished dossiers' index, counted from the index alone).
STORED_PROCESSING = {
    "processing_total": Sum("processing_seconds"),
    "processing_count": Count("processing_seconds"),
    "unstored": Count("finished_at", filter=Q(processing_seconds__isnull=True)),
}


def performance(
    agency: Agency | None, date_from: dt.date, date_to: dt.date, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The indicators for dossiers received / finished between two business dates."""
    now = now or timezone.now()
    start, end = _day_bounds(date_from, date_to)
    base = Dossier.objects.exclude(status=S.DRAFT)
    if agency is not None:
        base = base.filter(agency=agency)

    # Each counts the column its range is on (never null in it), not the key: the
    # period's indexes (dossier_received, dossier_finished_processing) hold every
    # column read, so the rows are counted from the index alone (an index-only scan).
    # The finished ones' statement sums their stored working time too (the average).
    received = base.filter(submitted_at__gte=start, submitted_at__lt=end).aggregate(
        total=Count("submitted_at"),
        in_person=Count("submitted_at", filter=Q(channel=Dossier.Channel.IN_PERSON)),
        online=Count("submitted_at", filter=Q(channel=Dossier.Channel.ONLINE)),
        postal=Count("submitted_at", filter=Q(channel=Dossier.Channel.POSTAL)),
    )
    finished_in = base.filter(status__in=FINISHED, finished_at__gte=start, finished_at__lt=end)
    finished = with_deadline(finished_in).aggregate(
        total=Count("finished_at"),
        on_time=Count(
            "finished_at", filter=Q(deadline__isnull=True) | Q(finished_at__lte=F("deadline"))
        ),
        **STORED_PROCESSING,
    )
    average_hours = average_processing_hours(finished_in, agency, stored=finished)
    overdue_now = count_overdue(base, now, every_agency=agency is None)  # one statement
    return {
        "from_date": date_from,
        "to_date": date_to,
        "received": {
            "total": received["total"],
            "in_person": received["in_person"],
            "online": received["online"],
            "postal": received["postal"],
            "online_share": _ratio(received["online"], received["total"]),
        },
        "finished": {
            "total": finished["total"],
            "on_time": finished["on_time"],
            "late": finished["total"] - finished["on_time"],
            "on_time_share": _ratio(finished["on_time"], finished["total"]),
        },
        "overdue_now": overdue_now["overdue"],
        "overdue_without_apology_now": overdue_now["overdue_without_apology"],
        "average_processing_hours": average_hours,
        "fees": fee_requests(agency, start, end),
    }
