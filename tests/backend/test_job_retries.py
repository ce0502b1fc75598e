"""A job that fails on an infrastructure error is retried with backoff, never failed for
good after one attempt (real procrastinate worker, PostgreSQL, an unreachable Redis)."""

from __future__ import annotations

import uuid

import pytest
import redis
import requests
from django.db import OperationalError, connection, transaction
from procrastinate import jobs as procrastinate_jobs
from procrastinate.contrib.django import app

from backend.jobs import RetryOnInfrastructure, defer, infrastructure_backoff
from backend.redis import get_redis
from tests.backend.test_jobs import run_worker_until_idle

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def job_of(task_name: str, attempts: int = 0) -> procrastinate_jobs.Job:
    return procrastinate_jobs.Job(
        id=1, queue="q", lock=None, queueing_lock=None, task_name=task_name, attempts=attempts
    )


def project_tasks() -> list:
    return [
        task
        for name, task in app.tasks.items()
        if not name.startswith(("builtin:", "procrastinate.", "tests."))
    ]


def test_every_project_task_is_retried_after_an_infrastructure_error() -> None:
    errors = [
        redis.exceptions.ConnectionError("Connection refused"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        OperationalError("server closed the connection unexpectedly"),
        requests.exceptions.ConnectionError("Connection refused"),
    ]
    names = sorted(task.name for task in project_tasks())
    assert {"notifications.send_pushes", "postal.send_booking", "dossiers.scan_deadlines"} <= set(
        names
    )
    for task in project_tasks():
        assert isinstance(task.retry_strategy, RetryOnInfrastructure), task.name
        for error in errors:
            decision = task.retry_strategy.get_retry_decision(
                exception=error, job=job_of(task.name)
            )
            assert decision is not None, (task.name, error)
            assert decision.retry_at is not None


def raise_wrapped() -> None:
    try:
        raise redis.exceptions.ConnectionError("refused")
    except redis.exceptions.ConnectionError as exc:
        raise RuntimeError("could not read the pause flag") from exc


def test_an_error_raised_from_an_infrastructure_error_is_one() -> None:
    with pytest.raises(RuntimeError) as caught:
        raise_wrapped()
    decision = RetryOnInfrastructure().get_retry_decision(exception=caught.value, job=job_of("t"))
    assert decision is not None


def test_other_failures_are_not_retried_unless_the_task_says_so() -> None:
    strategy = RetryOnInfrastructure()
    assert strategy.get_retry_decision(exception=ValueError("bug"), job=job_of("t")) is None
    postal = app.tasks["postal.send_booking"].retry_strategy
    assert postal.get_retry_decision(exception=ValueError("bug"), job=job_of("p")) is None


def test_the_postal_strategy_keeps_its_carrier_backoff() -> None:
    from postal.carriers import CarrierUnavailable

    postal = app.tasks["postal.send_booking"].retry_strategy
    decision = postal.get_retry_decision(
        exception=CarrierUnavailable("carrier_timeout", "timed out"), job=job_of("p", attempts=1)
    )
    assert decision is not None


def test_backoff_doubles_and_is_capped(settings) -> None:
    settings.JOB_RETRY_BASE_SECONDS = 2
    settings.JOB_RETRY_MAX_SECONDS = 300
    assert [infrastructure_backoff(n, jitter=0.0) for n in range(10)] == [
        2,
        4,
        8,
        16,
        32,
        64,
        128,
        256,
        300,
        300,
    ]
    assert infrastructure_backoff(3, jitter=1.0) == 13  # up to a fifth off: 16 - 3.2
    assert infrastructure_backoff(500, jitter=0.0) == 300


def test_it_gives_up_after_the_configured_attempts(settings) -> None:
    settings.JOB_RETRY_MAX_ATTEMPTS = 5
    strategy = RetryOnInfrastructure()
    error = redis.exceptions.ConnectionError("refused")
    assert strategy.get_retry_decision(exception=error, job=job_of("t", attempts=3)) is not None
    assert strategy.get_retry_decision(exception=error, job=job_of("t", attempts=4)) is None


@app.task(queue="tests", name="tests.redis_then_fine", retry=RetryOnInfrastructure())
def redis_then_fine(marker: str) -> None:
    client = get_redis()
    assert client is not None
    if client.incr(f"tests:redis-then-fine:{marker}") == 1:
        # The first run meets Redis away (a real client, nothing listening).
        redis.Redis.from_url(UNREACHABLE_REDIS, socket_connect_timeout=1).get("anything")


def job_rows(marker: str) -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, attempts FROM procrastinate_jobs "
            "WHERE task_name = 'tests.redis_then_fine' AND args->>'marker' = %s",
            [marker],
        )
        return list(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_a_job_that_meets_redis_down_is_retried_and_then_succeeds() -> None:
    marker = uuid.uuid4().hex  # job rows and counters outlive a test run
    with transaction.atomic():
        defer(redis_then_fine, marker=marker)
    run_worker_until_idle()
    assert job_rows(marker) == [("todo", 1)]  # not failed: waiting for its retry

    with connection.cursor() as cursor:  # skip the backoff wait (the retry is procrastinate's)
        cursor.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() "
            "WHERE task_name = 'tests.redis_then_fine' AND args->>'marker' = %s",
            [marker],
        )
    run_worker_until_idle()
    assert job_rows(marker) == [("succeeded", 2)]
    client = get_redis()
    assert client is not None
    assert int(client.get(f"tests:redis-then-fine:{marker}") or 0) == 2
