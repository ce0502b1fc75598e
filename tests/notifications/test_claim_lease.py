"""A worker that dies mid-batch: claimed rows come back, rows handed to FCM never do."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from fakes.fcm import Outcome
from notifications.delivery import PAUSE_KEY, _claim, _hand_to_fcm, recover_pushes, send_pushes
from notifications.models import Delivery
from tests.factories import make_user
from tests.notifications.conftest import notify, register, send_all, todo_jobs

pytestmark = pytest.mark.django_db

SEND_JOB = "notifications.send_pushes"


def test_a_claim_with_a_live_lease_is_not_taken_by_another_job(fcm) -> None:
    user = make_user()
    register(user, "tok-lease-live")
    notification = notify(user, "dossier.accepted")
    ids = list(notification.deliveries.values_list("pk", flat=True))
    assert [row.pk for row in _claim(ids, "a" * 32)] == ids

    assert send_pushes(ids) == 0
    assert fcm.attempts == []
    assert Delivery.objects.get(pk=ids[0]).claim_token == "a" * 32


def test_an_expired_claim_is_requeued_and_sent_once(fcm, settings) -> None:
    settings.PUSH_CLAIM_LEASE_SECONDS = 300
    user = make_user()
    register(user, "tok-lease-dead")
    notification = notify(user, "dossier.accepted")
    ids = list(notification.deliveries.values_list("pk", flat=True))
    _claim(ids, "b" * 32)  # ...and the worker died before handing them to FCM
    before = len(todo_jobs(SEND_JOB))
    assert recover_pushes() == 0  # lease still running: nothing to recover

    Delivery.objects.filter(pk__in=ids).update(
        claimed_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert recover_pushes() == 1

    assert [job["args"]["delivery_ids"] for job in todo_jobs(SEND_JOB)[before:]] == [ids]
    assert Delivery.objects.get(pk=ids[0]).claim_token == ""
    assert send_all(notification) == 1
    assert send_all(notification) == 0
    assert len(fcm.sent_to("tok-lease-dead")) == 1


def test_a_job_whose_claim_was_taken_over_does_not_send(fcm) -> None:
    user = make_user()
    register(user, "tok-lease-over")
    notification = notify(user, "dossier.accepted")
    ids = list(notification.deliveries.values_list("pk", flat=True))
    old = _claim(ids, "c" * 32)
    Delivery.objects.filter(pk__in=ids).update(claimed_until=timezone.now())
    assert [row.pk for row in _claim(ids, "d" * 32)] == ids  # the lease passed: taken over

    assert _hand_to_fcm(old, "c" * 32) == []
    assert [row.pk for row in _hand_to_fcm(old, "d" * 32)] == ids
    assert Delivery.objects.get(pk=ids[0]).state == Delivery.State.SENDING


def test_rows_handed_to_fcm_are_never_recovered(fcm) -> None:
    user = make_user()
    register(user, "tok-lease-wire")
    notification = notify(user, "dossier.accepted")
    ids = list(notification.deliveries.values_list("pk", flat=True))
    rows = _claim(ids, "e" * 32)
    _hand_to_fcm(rows, "e" * 32)  # ...and the worker died waiting for FCM's answer

    assert recover_pushes() == 0
    assert send_all(notification) == 0
    assert fcm.attempts == []


def test_a_slice_throttled_by_fcm_gives_the_rest_of_the_batch_back(fcm, settings) -> None:
    settings.FCM_CONCURRENCY = 1
    user = make_user()
    register(user, "tok-slice-1")
    register(user, "tok-slice-2")
    notification = notify(user, "dossier.accepted")
    # Slices go in delivery order (pk); which device's delivery comes first is the
    # fan-out's business, so the throttled one is the first slice's, whichever it is.
    first, second = Delivery.objects.filter(notification=notification).order_by("pk")
    fcm.script(first.device.token, "QUOTA_EXCEEDED")

    assert send_all(notification) == 1

    second.refresh_from_db()
    assert (second.state, second.attempts, second.claim_token) == (Delivery.State.CREATED, 0, "")
    assert fcm.attempts_for(second.device.token) == []
    assert [job["args"]["delivery_ids"] for job in todo_jobs(SEND_JOB)][-1] == [second.pk]


def test_a_short_pause_is_waited_out_by_the_job_keeping_its_claim(
    fcm, settings, monkeypatch
) -> None:
    # A Retry-After of a second: the job waits it out and sends the rest of its batch
    # itself, instead of giving the rows back for a job queued at the pause's end.
    settings.FCM_CONCURRENCY = 1
    settings.PUSH_QUOTA_MIN_WAIT_SECONDS = 1
    settings.PUSH_PAUSE_WAIT_SECONDS = 5
    waits: list[tuple[float, str]] = []

    def sleep(seconds: float) -> None:
        second = Delivery.objects.filter(pk=rows[1].pk).values_list("claimed_until", flat=True)
        waits.append((seconds, "claimed" if second[0] > timezone.now() else "lapsed"))
        cache.delete(PAUSE_KEY)  # the pause has passed

    monkeypatch.setattr("notifications.delivery.sleep", sleep)
    monkeypatch.setattr("notifications.delivery.jitter_fraction", lambda: 0.0)
    user = make_user()
    register(user, "tok-wait-1")
    register(user, "tok-wait-2")
    notification = notify(user, "dossier.accepted")
    rows = list(Delivery.objects.filter(notification=notification).order_by("pk"))
    fcm.script(rows[0].device.token, Outcome("QUOTA_EXCEEDED", retry_after=1))
    before = len(todo_jobs(SEND_JOB))

    assert send_all(notification) == 2

    [(waited, claim)] = waits
    assert 0 < waited <= 1.1  # until the end of the Retry-After (plus jitter), no longer
    assert claim == "claimed"  # the rest of the batch stayed this job's meanwhile
    second = Delivery.objects.get(pk=rows[1].pk)
    assert (second.state, second.attempts) == (Delivery.State.DELIVERED, 1)
    # Only the throttled row's own retry was queued; the rest was not given back.
    assert [job["args"]["delivery_ids"] for job in todo_jobs(SEND_JOB)[before:]] == [[rows[0].pk]]


def test_a_long_pause_still_gives_the_rest_of_the_batch_back(fcm, settings, monkeypatch) -> None:
    settings.FCM_CONCURRENCY = 1
    settings.PUSH_PAUSE_WAIT_SECONDS = 5  # FCM's default minute is longer
    monkeypatch.setattr("notifications.delivery.sleep", lambda seconds: pytest.fail("waited"))
    user = make_user()
    register(user, "tok-long-1")
    register(user, "tok-long-2")
    notification = notify(user, "dossier.accepted")
    first, second = Delivery.objects.filter(notification=notification).order_by("pk")
    fcm.script(first.device.token, "QUOTA_EXCEEDED")

    assert send_all(notification) == 1

    assert fcm.attempts_for(second.device.token) == []
    assert [job["args"]["delivery_ids"] for job in todo_jobs(SEND_JOB)][-1] == [second.pk]
