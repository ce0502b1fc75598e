"""Pushes of one dossier to one device share a collapse key: the phone shows whichever
arrives last, so a release of held pushes must never end on an older status."""

from __future__ import annotations

import pytest

from dossiers.models import Dossier, DossierEvent
from notifications import actions
from notifications.delivery import SUPERSEDED, _claim, _hand_to_fcm, _send_slice, send_pushes
from notifications.fcm import FcmGateway
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
    for kind in ("dossier.accepted", "dossier.processing_started"):
        entry = Notification.objects.get(event=emit_and_fan_out(dossier, kind))
        send_pushes(list(entry.deliveries.values_list("pk", flat=True)))

    assert [m["data"]["type"] for m in fcm.sent_to("tok-busy-day")] == [
        "dossier.accepted",
        "dossier.processing_started",
    ]


def emit_and_fan_out(dossier: Dossier, kind: str) -> DossierEvent:
    event = emit(dossier, kind)
    actions.notify_event(event.pk)
    return event


def deliveries_of(event: DossierEvent) -> list[int]:
    return list(Delivery.objects.filter(notification__event=event).values_list("pk", flat=True))


def test_an_earlier_push_sent_after_a_later_one_went_is_dropped(fcm, clock) -> None:
    """Two events milliseconds apart: their send jobs run side by side, and the later
    event's may send first. The earlier push must not follow it: the phone, which keeps
    one notification per dossier, would end on the older status."""
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-two-jobs")
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)
    delivered = emit_and_fan_out(dossier, "delivery.delivered")
    handed_over = emit_and_fan_out(dossier, "dossier.handed_over")

    assert send_pushes(deliveries_of(handed_over)) == 1
    assert send_pushes(deliveries_of(delivered)) == 0

    assert [m["data"]["type"] for m in fcm.sent_to("tok-two-jobs")] == ["dossier.handed_over"]
    [late] = Delivery.objects.filter(notification__event=delivered)
    assert (late.state, late.error_code, late.attempts) == ("permanent-failure", SUPERSEDED, 0)
    # Both entries stay in the inbox.
    assert Notification.objects.filter(user=citizen).count() == 2


def test_an_earlier_push_is_dropped_while_another_job_holds_the_later_one(fcm, clock) -> None:
    """Claimed by two jobs at once, neither sending yet: the earlier push is not sent,
    the later one, once its job hands it over, is."""
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-two-claims")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    accepted = emit_and_fan_out(dossier, "dossier.accepted")
    started = emit_and_fan_out(dossier, "dossier.processing_started")
    later = _claim(deliveries_of(started), "b" * 32)  # the other job, not sending yet

    assert send_pushes(deliveries_of(accepted)) == 0
    assert fcm.sent_to("tok-two-claims") == []
    _send_slice(None, _hand_to_fcm(later, "b" * 32))

    assert [m["data"]["type"] for m in fcm.sent_to("tok-two-claims")] == [
        "dossier.processing_started"
    ]
    states = dict(Delivery.objects.values_list("notification__event", "error_code"))
    assert states == {accepted.pk: SUPERSEDED, started.pk: ""}


def test_an_urgent_push_replaced_by_a_later_one_asks_for_no_sms(fcm, clock) -> None:
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-urgent-replaced")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    completed = emit_and_fan_out(dossier, "dossier.completed")  # urgent
    handed_over = emit_and_fan_out(dossier, "dossier.handed_over")

    send_pushes(deliveries_of(handed_over))
    send_pushes(deliveries_of(completed))

    assert [m["data"]["type"] for m in fcm.sent_to("tok-urgent-replaced")] == [
        "dossier.handed_over"
    ]
    entry = Notification.objects.get(event=completed)
    assert (entry.urgent, entry.sms_status) == (True, Notification.SmsStatus.NONE)
    assert entry.deliveries.get().error_code == SUPERSEDED
    assert jobs("notifications.send_fallback_sms") == []


def test_a_push_to_another_device_or_dossier_is_not_dropped(fcm, clock) -> None:
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-phone")
    register(citizen, "tok-tablet")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    other = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    accepted = emit_and_fan_out(dossier, "dossier.accepted")
    started = emit_and_fan_out(dossier, "dossier.processing_started")
    elsewhere = emit_and_fan_out(other, "dossier.processing_started")
    [tablet] = Delivery.objects.filter(notification__event=started, device__token="tok-tablet")
    Delivery.objects.filter(pk=tablet.pk).update(state=Delivery.State.PERMANENT_FAILURE)

    send_pushes(deliveries_of(elsewhere) + deliveries_of(started))
    send_pushes(deliveries_of(accepted))

    def types(token: str) -> set[tuple[str, str]]:
        return {(m["data"]["dossier_id"], m["data"]["type"]) for m in fcm.sent_to(token)}

    assert types("tok-phone") == {
        (str(other.pk), "dossier.processing_started"),
        (str(dossier.pk), "dossier.processing_started"),
    }
    # The later push to the tablet failed for good: the earlier one still goes there.
    assert types("tok-tablet") == {
        (str(other.pk), "dossier.processing_started"),
        (str(dossier.pk), "dossier.accepted"),
    }
    assert len(fcm.accepted()) == 4


def test_an_urgent_push_goes_before_a_later_one_that_is_only_due(fcm, clock) -> None:
    """An urgent push is dropped only for a later push that reached FCM: one that is
    only due might still fail for good, and the urgent one's fallback SMS with it."""
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-urgent-first")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    completed = emit_and_fan_out(dossier, "dossier.completed")  # urgent
    handed_over = emit_and_fan_out(dossier, "dossier.handed_over")

    assert send_pushes(deliveries_of(completed)) == 1
    assert send_pushes(deliveries_of(handed_over)) == 1

    assert [m["data"]["type"] for m in fcm.sent_to("tok-urgent-first")] == [
        "dossier.completed",
        "dossier.handed_over",
    ]


def test_an_urgent_push_to_a_dead_token_falls_back_to_sms_though_a_later_one_is_due(
    fcm, clock
) -> None:
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-uninstalled")
    fcm.script("tok-uninstalled", "UNREGISTERED")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    completed = emit_and_fan_out(dossier, "dossier.completed")  # urgent
    emit_and_fan_out(dossier, "dossier.handed_over")

    send_pushes(deliveries_of(completed))

    entry = Notification.objects.get(event=completed)
    assert entry.deliveries.get().error_code == "UNREGISTERED"
    assert entry.sms_status == Notification.SmsStatus.PENDING
    assert [job["args"] for job in jobs("notifications.send_fallback_sms")] == [
        {"notification_id": entry.pk}
    ]


def test_two_pushes_of_one_dossier_in_one_job_do_not_leave_side_by_side(fcm, clock) -> None:
    """A job may hold both (a recovery, retries due together): the later one goes back
    to the queue, and its job sends it once the earlier one's answer is in."""
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-one-job")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    completed = emit_and_fan_out(dossier, "dossier.completed")  # urgent: not dropped
    [later] = deliveries_of(emit_and_fan_out(dossier, "dossier.handed_over"))
    before = len(jobs("notifications.send_pushes"))

    assert send_pushes([*deliveries_of(completed), later]) == 1

    assert [m["data"]["type"] for m in fcm.sent_to("tok-one-job")] == ["dossier.completed"]
    waiting = Delivery.objects.get(pk=later)
    assert (waiting.state, waiting.claim_token, waiting.attempts) == ("created", "", 0)
    [requeued] = jobs("notifications.send_pushes")[before:]
    assert requeued["args"] == {"delivery_ids": [later]}
    assert send_pushes(requeued["args"]["delivery_ids"]) == 1
    assert [m["data"]["type"] for m in fcm.sent_to("tok-one-job")] == [
        "dossier.completed",
        "dossier.handed_over",
    ]


def test_slices_cut_to_the_room_there_is_keep_a_pairs_pushes_in_order(fcm, clock, settings) -> None:
    """A job whose slices are cut to one row (one free connection) sends the two
    pushes of a pair in two slices, one after the other: the later one leaves once the
    earlier one's answer is in, in the same job (no requeue)."""
    settings.FCM_MAX_CONNECTIONS = 2
    settings.FCM_CONCURRENCY = 2
    clock.set(at_local(9, 0))
    citizen = make_user()
    register(citizen, "tok-cut-slices")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    completed = emit_and_fan_out(dossier, "dossier.completed")  # urgent: not dropped
    [later] = deliveries_of(emit_and_fan_out(dossier, "dossier.handed_over"))
    before = len(jobs("notifications.send_pushes"))
    pool = FcmGateway().sender.in_flight
    other = pool.take(1, timeout=0)  # another job's request: one connection left
    assert other is not None
    try:
        assert send_pushes([*deliveries_of(completed), later]) == 2
    finally:
        other.close()

    assert [m["data"]["type"] for m in fcm.sent_to("tok-cut-slices")] == [
        "dossier.completed",
        "dossier.handed_over",
    ]
    attempts = [a for a in fcm.attempts if a["token"] == "tok-cut-slices"]
    assert attempts[0]["at"] <= attempts[1]["at"]
    assert set(
        Delivery.objects.filter(notification__dossier=dossier).values_list("state", flat=True)
    ) == {"delivered"}
    assert jobs("notifications.send_pushes")[before:] == []  # nothing went back to the queue
    assert pool.free == pool.limit
