"""Pushes of one dossier to one device share a collapse key: the phone shows whichever
arrives last, so a release of held pushes must never end on an older status."""

from __future__ import annotations

import pytest

from dossiers.models import Dossier
from notifications import actions
from notifications.delivery import SUPERSEDED, send_pushes
from notifications.models import Delivery, Notification
from tests.factories import make_dossier, make_user
from tests.notifications.conftest import at_local, emit, jobs, register

pytestmark = [pytest.mark.django_db, pytest.mark.shipped_quiet_hours]


def send_job_of(notification: Notification) -> list[int]:
    """The delivery ids of the one queued send job for `notification`'s pushes."""
    mine = set(notification.deliveries.values_list("pk", flat=True))
    [job] = [
        job["args"]["delivery_ids"]
        for job in jobs("notifications.send_pushes")
        if set(job["args"]["delivery_ids"]) & mine
    ]
    return list(job)


def test_held_pushes_of_one_dossier_go_out_as_one_push_with_the_latest_status(fcm, clock) -> None:
    clock.set(at_local(23, 15))
    citizen = make_user(language="en")
    register(citizen, "tok-night-phone")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    # Three status changes within a few milliseconds, all held for the morning.
    kinds = ("dossier.accepted", "dossier.handed_over", "dossier.processing_started")
    events = [emit(dossier, kind) for kind in kinds]
    for event in reversed(events):  # the fan-out jobs may finish in any order
        actions.notify_event(event.pk)
    entries = [Notification.objects.get(event=event) for event in events]
    assert {d.next_attempt_at for e in entries for d in e.deliveries.all()} == {
        at_local(7, 0, day=11)
    }

    clock.set(at_local(7, 0, day=11))
    oldest, middle, latest = (send_job_of(entry) for entry in entries)
    # Released together, the jobs run in any order: here the worst one for the phone.
    for delivery_ids in (latest, oldest, middle):
        send_pushes(delivery_ids)

    [message] = fcm.sent_to("tok-night-phone")
    assert message["data"]["event_id"] == str(events[-1].pk)
    assert message["data"]["type"] == "dossier.processing_started"
    assert message["notification"]["title"] == "Dossier in progress"
    states = {
        entry.type: (delivery.state, delivery.error_code)
        for entry in entries
        for delivery in entry.deliveries.all()
    }
    assert states == {
        "dossier.accepted": ("permanent-failure", SUPERSEDED),
        "dossier.handed_over": ("permanent-failure", SUPERSEDED),
        "dossier.processing_started": ("delivered", ""),
    }
    # Every entry stays in the inbox.
    assert Notification.objects.filter(user=citizen).count() == 3


def test_held_pushes_wait_for_the_morning_even_when_a_job_runs_early(fcm, clock) -> None:
    clock.set(at_local(23, 15))
    citizen = make_user()
    register(citizen, "tok-early-job")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    event = emit(dossier, "dossier.accepted")
    actions.notify_event(event.pk)
    entry = Notification.objects.get(event=event)

    assert send_pushes(list(entry.deliveries.values_list("pk", flat=True))) == 0

    assert fcm.sent_to("tok-early-job") == []
    assert entry.deliveries.get().state == "created"


def test_a_later_push_held_for_the_morning_does_not_hold_back_an_urgent_one(fcm, clock) -> None:
    clock.set(at_local(23, 15))
    citizen = make_user()
    register(citizen, "tok-urgent-then-held")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    urgent = emit(dossier, "dossier.payment_requested")
    held = emit(dossier, "dossier.processing_started")
    for event in (held, urgent):
        actions.notify_event(event.pk)
    urgent_entry, held_entry = (Notification.objects.get(event=e) for e in (urgent, held))

    send_pushes(list(urgent_entry.deliveries.values_list("pk", flat=True)))
    clock.set(at_local(7, 0, day=11))
    send_pushes(list(held_entry.deliveries.values_list("pk", flat=True)))

    sent = fcm.sent_to("tok-urgent-then-held")
    assert [m["data"]["type"] for m in sent] == [
        "dossier.payment_requested",
        "dossier.processing_started",
    ]


def test_a_retry_after_a_later_push_went_is_dropped_without_fallback_sms(
    fcm, clock, no_jitter
) -> None:
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-day-phone")
    fcm.script("tok-day-phone", "UNAVAILABLE")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    completed = emit(dossier, "dossier.completed")
    actions.notify_event(completed.pk)
    first = Notification.objects.get(event=completed)
    send_pushes(list(first.deliveries.values_list("pk", flat=True)))
    retry = first.deliveries.get()
    assert (retry.state, retry.next_attempt_at is not None) == ("temporary-failure", True)

    handed_over = emit(dossier, "dossier.handed_over")
    actions.notify_event(handed_over.pk)
    second = Notification.objects.get(event=handed_over)
    send_pushes(list(second.deliveries.values_list("pk", flat=True)))
    clock.set(retry.next_attempt_at)
    send_pushes([retry.pk])

    assert fcm.attempts_for("tok-day-phone") == ["UNAVAILABLE", "ok"]
    assert [m["data"]["type"] for m in fcm.sent_to("tok-day-phone")] == ["dossier.handed_over"]
    retry.refresh_from_db()
    assert (retry.state, retry.error_code) == ("permanent-failure", SUPERSEDED)
    first.refresh_from_db()
    assert first.sms_status == Notification.SmsStatus.NONE
    assert jobs("notifications.send_fallback_sms") == []
    assert Delivery.objects.filter(state="delivered").count() == 1


def test_pushes_sent_when_made_are_not_dropped(fcm, clock) -> None:
    """During the day each event's push goes as it is made, even in quick succession."""
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-busy-day")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    events = [emit(dossier, kind) for kind in ("dossier.accepted", "dossier.processing_started")]
    for event in events:
        actions.notify_event(event.pk)
    for event in events:
        send_pushes(
            list(Notification.objects.get(event=event).deliveries.values_list("pk", flat=True))
        )

    assert [m["data"]["type"] for m in fcm.sent_to("tok-busy-day")] == [
        "dossier.accepted",
        "dossier.processing_started",
    ]
