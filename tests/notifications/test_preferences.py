"""Preferences per category and quiet hours: what waits, what goes at once."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from notifications.models import Preference
from tests.conftest import api_as, make_user
from tests.notifications.conftest import at_local, jobs, notify, register

pytestmark = [pytest.mark.django_db, pytest.mark.shipped_quiet_hours]

HCM = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


def test_default_preferences() -> None:
    response = api_as(make_user()).get("/api/v1/notifications/preferences")
    assert response.status_code == 200
    assert response.json() == {
        "status_changes": True,
        "action_requests": True,
        "delivery_updates": True,
        "announcements": True,
        "quiet_hours_enabled": True,
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "timezone": "Asia/Ho_Chi_Minh",
    }


def test_update_some_preferences_keeps_the_rest() -> None:
    user = make_user()
    api = api_as(user)

    response = api.patch(
        "/api/v1/notifications/preferences",
        {"delivery_updates": False, "quiet_start": "21:30", "timezone": "Asia/Bangkok"},
    )

    assert response.status_code == 200
    assert response.json() == {
        "status_changes": True,
        "action_requests": True,
        "delivery_updates": False,
        "announcements": True,
        "quiet_hours_enabled": True,
        "quiet_start": "21:30",
        "quiet_end": "07:00",
        "timezone": "Asia/Bangkok",
    }
    saved = Preference.objects.get(user=user)
    assert (saved.delivery_updates, saved.quiet_start) == (False, dt.time(21, 30))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quiet_start": "24:00"}, "quiet_start"),
        ({"quiet_end": "7:00"}, "quiet_end"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"status_changes": "maybe"}, "status_changes"),
    ],
)
def test_invalid_preferences_are_refused(body: dict, field: str) -> None:
    user = make_user()
    response = api_as(user).patch("/api/v1/notifications/preferences", body)
    assert response.status_code == 422
    assert [detail["field"] for detail in response.json()["details"]] == [field]
    assert Preference.objects.filter(user=user).count() == 0


def test_category_switched_off_gets_inbox_entry_but_no_push() -> None:
    user = make_user()
    register(user, "tok-pref")
    Preference.objects.create(user=user, delivery_updates=False)

    muted = notify(user, "delivery.out_for_delivery")
    allowed = notify(user, "dossier.accepted")

    assert muted.deliveries.count() == 0
    assert allowed.deliveries.count() == 1


@pytest.mark.parametrize(
    ("moment", "in_quiet"),
    [
        (at_local(21, 59), False),
        (at_local(22, 0), True),
        (at_local(23, 30), True),
        (at_local(3, 0), True),
        (at_local(6, 59), True),
        (at_local(7, 0), False),
        (at_local(12, 0), False),
    ],
)
def test_default_quiet_hours_are_22_to_7_local_time(moment: dt.datetime, in_quiet: bool) -> None:
    preference = Preference(user=make_user())
    assert preference.in_quiet_hours(moment.astimezone(dt.UTC)) is in_quiet


def test_quiet_hours_end_is_the_next_morning() -> None:
    preference = Preference(user=make_user())
    assert preference.quiet_hours_end(at_local(23, 30, day=10)) == at_local(7, 0, day=11)
    assert preference.quiet_hours_end(at_local(2, 15, day=11)) == at_local(7, 0, day=11)
    assert preference.quiet_hours_end(at_local(7, 0, day=11)) is None


def test_quiet_hours_in_the_users_time_zone() -> None:
    preference = Preference(user=make_user(), timezone="Europe/Paris")
    # 04:00 in Ho Chi Minh City is 22:00 the evening before in Paris (winter time).
    moment = at_local(4, 0, day=10)
    assert preference.in_quiet_hours(moment) is True
    assert preference.quiet_hours_end(moment) == dt.datetime(
        2026, 3, 10, 7, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")
    )


def test_non_urgent_push_in_quiet_hours_waits_for_the_morning(clock) -> None:
    clock.set(at_local(23, 15))
    user = make_user()
    register(user, "tok-night")

    entry = notify(user, "dossier.processing_started")

    delivery = entry.deliveries.get()
    [job] = [
        j for j in jobs("notifications.send_pushes") if j["args"]["delivery_ids"] == [delivery.pk]
    ]
    assert job["scheduled_at"] == at_local(7, 0, day=11)
    assert entry.read_at is None  # the inbox entry exists at once


def test_urgent_push_in_quiet_hours_goes_at_once(clock) -> None:
    clock.set(at_local(23, 15))
    user = make_user()
    register(user, "tok-urgent")

    entry = notify(user, "dossier.payment_requested")

    delivery = entry.deliveries.get()
    [job] = [
        j for j in jobs("notifications.send_pushes") if j["args"]["delivery_ids"] == [delivery.pk]
    ]
    assert job["scheduled_at"] is None


def test_push_outside_quiet_hours_goes_at_once(clock) -> None:
    clock.set(at_local(9, 0))
    user = make_user()
    register(user, "tok-day")

    entry = notify(user, "dossier.processing_started")

    delivery = entry.deliveries.get()
    [job] = [
        j for j in jobs("notifications.send_pushes") if j["args"]["delivery_ids"] == [delivery.pk]
    ]
    assert job["scheduled_at"] is None


def test_quiet_hours_switched_off_send_at_night(clock) -> None:
    clock.set(at_local(23, 15))
    user = make_user()
    register(user, "tok-owl")
    Preference.objects.create(user=user, quiet_hours_enabled=False)

    entry = notify(user, "dossier.processing_started")

    delivery = entry.deliveries.get()
    [job] = [
        j for j in jobs("notifications.send_pushes") if j["args"]["delivery_ids"] == [delivery.pk]
    ]
    assert job["scheduled_at"] is None
