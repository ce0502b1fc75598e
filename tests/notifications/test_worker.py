"""The real procrastinate worker: events become pushes exactly when they commit, once."""

from __future__ import annotations

import pytest
from django.db import transaction

from backend.jobs import defer
from dossiers.events import record_event
from dossiers.models import Dossier
from notifications.models import Delivery, Notification
from notifications.tasks import fan_out_event, send_pushes_job
from tests.factories import make_dossier, make_user
from tests.notifications.conftest import jobs, register, run_worker_until_idle

pytestmark = pytest.mark.django_db(transaction=True)


def fan_outs_of(event_id: int) -> list[str]:
    # Job rows outlive transactional tests (procrastinate's tables are not flushed).
    return [
        job["status"]
        for job in jobs("notifications.fan_out_event")
        if job["args"] == {"event_id": event_id}
    ]


class RollbackError(Exception):
    pass


def emit_then_fail(dossier: Dossier, seen: list[int]) -> None:
    with transaction.atomic():
        event = record_event(dossier, type="dossier.completed", actor_type="agency")
        assert fan_outs_of(event.pk) == ["todo"]  # deferred inside...
        seen.append(event.pk)
        raise RollbackError


def test_rolled_back_event_sends_no_push(fcm) -> None:
    user = make_user()
    register(user, "tok-rollback")
    dossier = make_dossier(user, status=Dossier.Status.PROCESSING)

    seen: list[int] = []
    with pytest.raises(RollbackError):
        emit_then_fail(dossier, seen)
    run_worker_until_idle()

    [event_id] = seen
    assert fan_outs_of(event_id) == []  # ...and gone with the rollback
    assert Notification.objects.count() == 0
    assert fcm.attempts == []


def test_committed_event_sends_exactly_one_push_per_device(fcm) -> None:
    user = make_user()
    register(user, "tok-commit-1")
    register(user, "tok-commit-2")
    dossier = make_dossier(user, status=Dossier.Status.PROCESSING)

    with transaction.atomic():
        event = record_event(dossier, type="dossier.completed", actor_type="agency")
    run_worker_until_idle()
    run_worker_until_idle()

    notification = Notification.objects.get(user=user, event=event)
    assert sorted(Delivery.objects.values_list("state", flat=True)) == ["delivered"] * 2
    assert notification.deliveries.count() == 2
    assert len(fcm.sent_to("tok-commit-1")) == 1
    assert len(fcm.sent_to("tok-commit-2")) == 1
    assert fan_outs_of(event.pk) == ["succeeded"]


def test_jobs_that_run_twice_send_nothing_twice(fcm) -> None:
    user = make_user()
    register(user, "tok-twice")
    dossier = make_dossier(user, status=Dossier.Status.PROCESSING)
    with transaction.atomic():
        event = record_event(dossier, type="dossier.accepted", actor_type="agency")
        # A duplicate fan-out (a retried job) in the same transaction.
        defer(fan_out_event, event_id=event.pk)
    run_worker_until_idle()
    delivery = Delivery.objects.get()
    with transaction.atomic():  # and a duplicate send job for the same delivery
        defer(send_pushes_job, delivery_ids=[delivery.pk])
    run_worker_until_idle()

    assert Notification.objects.filter(event=event).count() == 1
    assert Delivery.objects.count() == 1
    assert fcm.attempts_for("tok-twice") == ["ok"]
    sends = [
        j for j in jobs("notifications.send_pushes") if delivery.pk in j["args"]["delivery_ids"]
    ]
    assert [job["status"] for job in sends] == ["succeeded", "succeeded"]
