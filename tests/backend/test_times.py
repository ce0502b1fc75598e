"""One time rule for the whole API: RFC 3339, UTC, milliseconds, `Z` (backend/times.py)."""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from backend.times import ApiJSONEncoder, Rfc3339Text, rfc3339
from dossiers.models import Dossier
from tests.factories import make_dossier

RULE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LOOKS_LIKE_A_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
VIETNAM = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_a_moment_is_written_in_utc_with_milliseconds_and_z() -> None:
    moment = dt.datetime(2026, 3, 10, 8, 0, 0, 123456, tzinfo=VIETNAM)
    assert rfc3339(moment) == "2026-03-10T01:00:00.123Z"
    assert json.loads(json.dumps({"a": [moment]}, cls=ApiJSONEncoder)) == {
        "a": ["2026-03-10T01:00:00.123Z"]
    }
    with pytest.raises(ValueError, match="naive"):
        rfc3339(dt.datetime(2026, 3, 10, 8, 0))  # noqa: DTZ001 (the case refused)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2026, 3, 10, 8, 0, 0, 123456, tzinfo=VIETNAM),
        dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2027, 1, 1, 6, 59, 59, 999500, tzinfo=VIETNAM),
        dt.datetime(2026, 6, 1, 0, 0, 0, 999, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC),
        dt.datetime(999, 2, 3, 4, 5, 6, 7000, tzinfo=dt.UTC),
    ],
)
def test_postgresql_writes_a_moment_as_rfc3339_does(user, moment: dt.datetime) -> None:
    dossier = make_dossier(user, status=Dossier.Status.PROCESSING, submitted_at=moment)
    written = Dossier.objects.filter(pk=dossier.pk).values_list(
        Rfc3339Text("submitted_at"), Rfc3339Text("paused_at")
    )
    with connection.cursor() as cursor:
        for zone in ("UTC", "Asia/Ho_Chi_Minh", "America/Los_Angeles"):
            cursor.execute("SELECT set_config('TimeZone', %s, true)", [zone])
            assert written.get() == (rfc3339(moment), None), zone


@pytest.mark.django_db
def test_every_moment_of_a_dossier_and_its_timeline_follows_the_rule(user, user_api) -> None:
    dossier = make_dossier(
        user,
        status=Dossier.Status.PROCESSING,
        appointment_at=dt.datetime(2026, 3, 20, 8, 0, tzinfo=VIETNAM),
    )
    bodies = [
        user_api.get(f"/api/v1/dossiers/{dossier.pk}").json(),
        user_api.get(f"/api/v1/dossiers/{dossier.pk}/timeline").json(),
        user_api.get("/api/v1/dossiers").json(),
    ]
    moments = [s for body in bodies for s in strings(body) if LOOKS_LIKE_A_MOMENT.match(s)]
    assert "2026-03-20T01:00:00.000Z" in moments
    assert [m for m in moments if not RULE.fullmatch(m)] == []
