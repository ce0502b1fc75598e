"""The fan-out of an event is set-based: the same queries for 3 recipients or 60, every
rule per recipient kept (preferences, quiet hours, fallback SMS, the actor), and a
second run creates nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from auth.models import Membership, User
from dossiers.models import Dossier, DossierEvent
from notifications import actions
from notifications.models import Delivery, Device, Notification, Preference
from tests.factories import make_dossier, make_organisation, make_user
from tests.notifications.conftest import at_local, emit, jobs, register

pytestmark = pytest.mark.django_db

SEND_JOB = "notifications.send_pushes"
SMS_JOB = "notifications.send_fallback_sms"


def organisation_dossier(members: int, devices_each: int = 2) -> tuple[Dossier, list[User]]:
    """An organisation's dossier watched by `members` members (the applicant included),
    each with `devices_each` registered devices."""
    applicant = make_user()
    organisation = make_organisation(applicant)
    people = [applicant]
    for _ in range(members - 1):
        member = make_user()
        Membership.objects.create(organisation=organisation, user=member, watches=True)
        people.append(member)
    for index, person in enumerate(people):
        for device in range(devices_each):
            register(person, f"tok-{index}-{device}-{person.pk.hex[:6]}")
    dossier = make_dossier(applicant, status=Dossier.Status.PROCESSING, organisation=organisation)
    return dossier, people


def fan_out_queries(event: DossierEvent) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        actions.notify_event(event.pk)
    return [query["sql"] for query in queries.captured_queries]


def inserts(queries: list[str]) -> list[str]:
    """The tables rows were inserted into, one per statement (jobs: procrastinate's
    defer function)."""
    found = []
    for sql in queries:
        if sql.startswith("INSERT INTO"):
            found.append(sql.split('"')[1])
        elif "procrastinate_defer_jobs" in sql:
            found.append("procrastinate_jobs")
    return found


def send_job_ids() -> list[int]:
    return sorted(i for job in jobs(SEND_JOB) for i in job["args"]["delivery_ids"])


def test_fan_out_queries_do_not_grow_with_the_audience() -> None:
    small, _ = organisation_dossier(members=3)
    large, _ = organisation_dossier(members=60)

    few = fan_out_queries(emit(small, "dossier.accepted"))
    many = fan_out_queries(emit(large, "dossier.accepted"))

    assert len(many) == len(few), "\n".join(many)
    assert Notification.objects.filter(dossier=large).count() == 60
    assert Delivery.objects.filter(notification__dossier=large).count() == 120
    # Inbox entries, deliveries, the send jobs: one statement each.
    assert inserts(many) == [
        "notifications_notification",
        "notifications_delivery",
        "procrastinate_jobs",
    ]


def test_inserts_and_send_jobs_come_in_batches(settings, monkeypatch) -> None:
    settings.FCM_BATCH_SIZE = 25
    monkeypatch.setattr(actions, "FAN_OUT_INSERT_ROWS", 40)
    dossier, _ = organisation_dossier(members=50)

    queries = fan_out_queries(emit(dossier, "dossier.accepted"))

    # 50 entries in 2 INSERTs, 100 deliveries in 3, 4 send jobs in 1.
    assert inserts(queries) == ["notifications_notification"] * 2 + [
        "notifications_delivery"
    ] * 3 + ["procrastinate_jobs"]
    deliveries = sorted(
        Delivery.objects.filter(notification__dossier=dossier).values_list("pk", flat=True)
    )
    assert len(deliveries) == 100
    assert send_job_ids() == deliveries  # every delivery in exactly one job
    assert [len(job["args"]["delivery_ids"]) for job in jobs(SEND_JOB)] == [25] * 4


def test_send_jobs_are_spread_over_the_workers_concurrency(settings) -> None:
    settings.FCM_CONCURRENCY = 10
    settings.WORKER_CONCURRENCY = 4
    dossier, _ = organisation_dossier(members=40)  # 80 deliveries

    actions.notify_event(emit(dossier, "dossier.accepted").pk)

    # 4 jobs of 20 (not one of FCM_BATCH_SIZE, 500) run side by side.
    assert [len(job["args"]["delivery_ids"]) for job in jobs(SEND_JOB)] == [20] * 4
    assert send_job_ids() == sorted(
        Delivery.objects.filter(notification__dossier=dossier).values_list("pk", flat=True)
    )


def test_send_jobs_are_never_spread_below_one_slice(settings) -> None:
    settings.FCM_CONCURRENCY = 10
    settings.WORKER_CONCURRENCY = 8
    dossier, _ = organisation_dossier(members=12)  # 24 deliveries

    actions.notify_event(emit(dossier, "dossier.accepted").pk)

    assert [len(job["args"]["delivery_ids"]) for job in jobs(SEND_JOB)] == [10, 10, 4]


def test_a_fan_out_run_twice_creates_nothing_twice() -> None:
    dossier, people = organisation_dossier(members=30)
    event = emit(dossier, "dossier.supplement_requested")  # urgent: SMS for some
    Device.objects.filter(user=people[1]).update(active=False)  # → fallback SMS

    assert actions.notify_event(event.pk) == 30
    counts = (
        Notification.objects.count(),
        Delivery.objects.count(),
        send_job_ids(),
        len(jobs(SMS_JOB)),
    )
    assert actions.notify_event(event.pk) == 0

    assert counts == (
        Notification.objects.count(),
        Delivery.objects.count(),
        send_job_ids(),
        len(jobs(SMS_JOB)),
    )
    assert counts[:2] == (30, 58)
    assert counts[3] == 1


@pytest.mark.shipped_quiet_hours
def test_every_rule_per_recipient_holds_in_one_bulk_fan_out(clock) -> None:
    clock.set(at_local(23, 15))  # default quiet hours: 22:00-07:00
    dossier, people = organisation_dossier(members=6, devices_each=1)
    actor, muted, no_device, no_quiet_hours, en_reader, plain = people
    Preference.objects.create(user=muted, status_changes=False)
    Preference.objects.create(user=no_quiet_hours, quiet_hours_enabled=False)
    no_device.push_devices.update(active=False)
    User.objects.filter(pk=en_reader.pk).update(language="en")

    event = emit(
        dossier,
        "dossier.processing_started",
        actor_type=DossierEvent.Actor.CITIZEN,
        actor_user=actor,
    )
    assert actions.notify_event(event.pk) == 6

    entries = {n.user_id: n for n in Notification.objects.filter(event=event)}
    assert len(entries) == 6
    assert entries[actor.pk].read_at is not None
    assert all(entries[p.pk].read_at is None for p in people[1:])
    assert entries[en_reader.pk].title != entries[plain.pk].title  # en vs vi
    pushed = {d.notification.user_id: d for d in Delivery.objects.filter(notification__event=event)}
    # No push for the actor, the muted category, the user without a device.
    assert set(pushed) == {no_quiet_hours.pk, en_reader.pk, plain.pk}
    assert pushed[no_quiet_hours.pk].next_attempt_at is None
    assert pushed[plain.pk].next_attempt_at == at_local(7, 0, day=11)
    assert pushed[en_reader.pk].next_attempt_at == at_local(7, 0, day=11)
    scheduled = {tuple(job["args"]["delivery_ids"]): job["scheduled_at"] for job in jobs(SEND_JOB)}
    assert scheduled == {
        (pushed[no_quiet_hours.pk].pk,): None,
        tuple(sorted([pushed[plain.pk].pk, pushed[en_reader.pk].pk])): at_local(7, 0, day=11),
    }
    # Not urgent: no SMS for anybody.
    assert jobs(SMS_JOB) == []
    assert {n.sms_status for n in entries.values()} == {Notification.SmsStatus.NONE}


def test_urgent_event_marks_and_queues_the_sms_of_recipients_without_devices() -> None:
    dossier, people = organisation_dossier(members=4, devices_each=1)
    for person in people[2:]:
        person.push_devices.update(active=False)
    Preference.objects.create(user=people[3], action_requests=False)  # switched off

    event = emit(dossier, "dossier.supplement_requested")
    actions.notify_event(event.pk)

    entries = {n.user_id: n for n in Notification.objects.filter(event=event)}
    assert entries[people[2].pk].sms_status == Notification.SmsStatus.PENDING
    assert entries[people[2].pk].sms_text
    others = [people[0], people[1], people[3]]
    assert {entries[p.pk].sms_status for p in others} == {Notification.SmsStatus.NONE}
    assert [job["args"] for job in jobs(SMS_JOB)] == [{"notification_id": entries[people[2].pk].pk}]
