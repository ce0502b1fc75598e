"""Jobs deferred in a transaction live and die with it (real procrastinate, PostgreSQL)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from backend.jobs import defer, defer_each
from backend.redis import get_redis
from fakes.harness import wait_until
from tests.conftest import run_jobs_until_idle

pytestmark = pytest.mark.django_db(transaction=True)


@app.task(queue="tests", name="tests.record_run")
def record_run(marker: str) -> None:
    client = get_redis()
    assert client is not None
    client.incr(f"tests:job-ran:{marker}")


def runs(marker: str) -> int:
    client = get_redis()
    assert client is not None
    return int(client.get(f"tests:job-ran:{marker}") or 0)


def queued(marker: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND args->>'marker' = %s",
            ["tests.record_run", marker],
        )
        return int(cursor.fetchone()[0])


def run_worker_until_idle() -> None:
    run_jobs_until_idle(["tests"])


class RollbackError(Exception):
    pass


def defer_then_fail(marker: str, *, expect_queued: int) -> None:
    with transaction.atomic():
        defer(record_run, marker=marker)
        assert queued(marker) == expect_queued
        raise RollbackError


def test_job_deferred_in_rolled_back_transaction_vanishes() -> None:
    with pytest.raises(RollbackError):
        defer_then_fail("rolled-back", expect_queued=1)  # visible inside...
    assert queued("rolled-back") == 0  # ...and gone with it
    run_worker_until_idle()
    assert runs("rolled-back") == 0


@app.task(queue="tests", name="tests.defer_then_roll_back")
def defer_then_roll_back(marker: str) -> None:
    with contextlib.suppress(RollbackError):
        defer_then_fail(marker, expect_queued=1)


def test_job_deferred_by_a_job_in_the_worker_lives_and_dies_with_its_transaction() -> None:
    # In the worker, procrastinate's own connector (a pool of its own) replaces the
    # Django one: deferring through it would commit the job before the job's rows.
    with transaction.atomic():
        defer(defer_then_roll_back, marker="from-worker")
    run_worker_until_idle()
    assert queued("from-worker") == 0
    assert runs("from-worker") == 0


def test_job_deferred_in_committed_transaction_runs_once() -> None:
    with transaction.atomic():
        defer(record_run, marker="committed")
    assert queued("committed") == 1
    run_worker_until_idle()
    run_worker_until_idle()
    assert runs("committed") == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM procrastinate_jobs WHERE args->>'marker' = 'committed'")
        assert [row[0] for row in cursor.fetchall()] == ["succeeded"]


def test_embedded_queue_runs_a_job_after_commit_only(embedded_jobs: Any) -> None:
    with pytest.raises(RollbackError):
        defer_then_fail("embedded-rollback", expect_queued=0)
    with transaction.atomic():
        defer(record_run, marker="embedded-commit")
        assert runs("embedded-commit") == 0  # not before the commit
    embedded_jobs.wait_idle()
    assert runs("embedded-commit") == 1
    assert runs("embedded-rollback") == 0
    assert queued("embedded-commit") == 0  # never touched the PostgreSQL queue


@app.task(queue="tests", name="tests.record_other_run")
def record_other_run(marker: str) -> None:
    record_run(f"{marker}-other")


def defer_each_then_fail(marker: str) -> None:
    with transaction.atomic():
        defer_each([record_run, record_other_run], marker=marker)
        raise RollbackError


def test_defer_each_enqueues_one_job_per_task_in_one_statement(
    django_assert_num_queries: Any,
) -> None:
    with pytest.raises(RollbackError):
        defer_each_then_fail("each-rollback")
    with transaction.atomic(), django_assert_num_queries(1):
        defer_each([record_run, record_other_run], marker="each")
    run_worker_until_idle()
    assert (runs("each"), runs("each-other")) == (1, 1)
    assert (runs("each-rollback"), runs("each-rollback-other")) == (0, 0)


def test_embedded_queue_runs_each_job_of_defer_each_after_commit(embedded_jobs: Any) -> None:
    with transaction.atomic():
        defer_each([record_run, record_other_run], marker="embedded-each")
        assert runs("embedded-each") == 0  # not before the commit
    embedded_jobs.wait_idle()
    assert (runs("embedded-each"), runs("embedded-each-other")) == (1, 1)


@app.task(
    queue="tests",
    name="tests.fail_once",
    retry=RetryStrategy(max_attempts=3, wait=1, retry_exceptions=[ConnectionError]),
)
def fail_once(marker: str) -> None:
    client = get_redis()
    assert client is not None
    if client.incr(f"tests:job-ran:{marker}") == 1:
        raise ConnectionError("the provider is down")


def test_embedded_queue_retries_a_failed_job_after_its_backoff(embedded_jobs: Any) -> None:
    started = time.monotonic()
    defer(fail_once, marker="embedded-retry")
    wait_until(lambda: runs("embedded-retry") == 2, timeout=20, what="the retry")
    assert time.monotonic() - started >= 1  # not before the strategy's wait
    embedded_jobs.wait_idle()
    assert runs("embedded-retry") == 2  # succeeded on the retry: no third run


def test_embedded_queue_runs_a_scheduled_job_at_its_time(embedded_jobs: Any) -> None:
    moment = timezone.now() + dt.timedelta(seconds=2)
    defer(record_run, marker="embedded-scheduled", schedule_at=moment)
    defer(record_run, marker="embedded-now")
    wait_until(lambda: runs("embedded-now") == 1, timeout=20, what="the job due now")
    assert runs("embedded-scheduled") == 0  # queued before, held until its time
    wait_until(lambda: runs("embedded-scheduled") == 1, timeout=20, what="the scheduled job")
    assert timezone.now() >= moment
