"""Pushes survive infrastructure faults: Redis away on the send path, a send job
that failed for good (its deliveries are found and queued again), a worker that
died holding a claim (its rows come back within seconds, never sent twice)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from notifications.delivery import _claim, paused_until, recover_pushes, send_pushes
from notifications.models import Delivery
from tests.factories import make_user
from tests.notifications.conftest import notify, register, send_all, todo_jobs

pytestmark = pytest.mark.django_db

SEND_JOB = "notifications.send_pushes"


@pytest.fixture
def redis_down(settings: Any) -> None:
    """The cache pointed at a Redis that is not there (a real client, connection refused)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }


def test_pushes_due_while_redis_is_down_are_sent(fcm, redis_down) -> None:
    user = make_user()
    register(user, "tok-redis-down")
    notification = notify(user, "dossier.accepted")

    assert paused_until() is None  # unreadable pause flag: send as if none
    assert send_all(notification) == 1

    assert fcm.attempts_for("tok-redis-down") == ["ok"]
    assert notification.deliveries.get().state == Delivery.State.DELIVERED


def test_a_throttle_answer_while_redis_is_down_still_schedules_the_retry(
    fcm, redis_down, no_jitter, settings
) -> None:
    settings.PUSH_QUOTA_MIN_WAIT_SECONDS = 60
    user = make_user()
    register(user, "tok-redis-429")
    fcm.script("tok-redis-429", "QUOTA_EXCEEDED")
    notification = notify(user, "dossier.accepted")
    before = len(todo_jobs(SEND_JOB))

    assert send_all(notification) == 1

    row = notification.deliveries.get()
    assert row.state == Delivery.State.TEMPORARY_FAILURE
    assert row.next_attempt_at is not None
    [retry] = todo_jobs(SEND_JOB)[before:]
    assert retry["args"]["delivery_ids"] == [row.pk]
    assert retry["scheduled_at"] == row.next_attempt_at


def fail_jobs_of(delivery_ids: list[int]) -> None:
    """What a worker did to a send job that met an outage before this fix: failed for good."""
    with connection.cursor() as cursor:
        for pk in delivery_ids:
            cursor.execute(
                "UPDATE procrastinate_jobs SET status = 'failed' WHERE task_name = %s "
                "AND status = 'todo' AND args -> 'delivery_ids' @> to_jsonb(%s::bigint)",
                [SEND_JOB, pk],
            )


def age(delivery_ids: list[int], seconds: int) -> None:
    Delivery.objects.filter(pk__in=delivery_ids).update(
        updated_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


def test_a_delivery_whose_job_failed_for_good_is_queued_again_and_sent_once(fcm, settings) -> None:
    settings.PUSH_ORPHAN_GRACE_SECONDS = 10
    user = make_user()
    register(user, "tok-orphan")
    notification = notify(user, "dossier.accepted")
    ids = list(notification.deliveries.values_list("pk", flat=True))
    fail_jobs_of(ids)
    assert Delivery.objects.get(pk=ids[0]).state == Delivery.State.CREATED  # never claimed

    assert recover_pushes() == 0  # younger than the grace: left to its job
    age(ids, 11)
    assert recover_pushes() == 1
    assert [job["args"]["delivery_ids"] for job in todo_jobs(SEND_JOB)][-1] == ids
    assert recover_pushes() == 0  # now a queued job names it

    assert send_all(notification) == 1
    assert send_all(notification) == 0
    assert fcm.attempts_for("tok-orphan") == ["ok"]
    assert recover_pushes() == 0


def test_a_delivery_with_a_queued_job_is_not_queued_twice(fcm, settings) -> None:
    settings.PUSH_ORPHAN_GRACE_SECONDS = 0
    user = make_user()
    register(user, "tok-queued")
    notification = notify(user, "dossier.accepted")
    ids = list(notification.deliveries.values_list("pk", flat=True))
    age(ids, 60)
    before = len(todo_jobs(SEND_JOB))

    assert recover_pushes() == 0
    assert len(todo_jobs(SEND_JOB)) == before


def test_a_retry_waiting_for_its_time_is_not_an_orphan(fcm, settings, no_jitter) -> None:
    settings.PUSH_ORPHAN_GRACE_SECONDS = 0
    user = make_user()
    register(user, "tok-later")
    fcm.script("tok-later", "UNAVAILABLE")
    notification = notify(user, "dossier.accepted")
    send_all(notification)
    row = notification.deliveries.get()
    assert row.state == Delivery.State.TEMPORARY_FAILURE
    fail_jobs_of([row.pk])  # even without its job: not due yet, nothing to do now
    age([row.pk], 60)

    assert recover_pushes() == 0
    Delivery.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert recover_pushes() == 1


def test_a_dead_workers_claim_comes_back_after_the_short_lease(fcm, settings) -> None:
    assert settings.PUSH_CLAIM_LEASE_SECONDS <= 10
    user = make_user()
    register(user, "tok-dead-claim")
    notification = notify(user, "dossier.accepted")
    ids = list(notification.deliveries.values_list("pk", flat=True))
    _claim(ids, "f" * 32)  # ...and the worker was killed
    lease = Delivery.objects.get(pk=ids[0]).claimed_until
    assert lease is not None
    assert lease <= timezone.now() + dt.timedelta(seconds=settings.PUSH_CLAIM_LEASE_SECONDS)
    assert recover_pushes() == 0
    Delivery.objects.filter(pk__in=ids).update(claimed_until=timezone.now())

    assert recover_pushes() == 1
    assert send_all(notification) == 1
    assert fcm.attempts_for("tok-dead-claim") == ["ok"]


def test_a_long_batch_renews_its_claim_before_each_slice(fcm, settings, monkeypatch) -> None:
    settings.FCM_CONCURRENCY = 1
    user = make_user()
    register(user, "tok-renew-1")
    register(user, "tok-renew-2")
    notification = notify(user, "dossier.accepted")
    ids = sorted(notification.deliveries.values_list("pk", flat=True))
    leases: list[dt.datetime | None] = []
    from notifications import delivery

    real = delivery._hand_to_fcm

    def spy(rows, token):
        leases.append(Delivery.objects.get(pk=rows[0].pk).claimed_until)
        return real(rows, token)

    monkeypatch.setattr(delivery, "_hand_to_fcm", spy)
    before = timezone.now()
    assert send_pushes(ids) == 2
    assert len(leases) == 2
    assert leases[0] is not None
    assert leases[1] is not None
    assert leases[1] > leases[0] >= before
