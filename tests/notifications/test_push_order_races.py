"""Two send jobs with pushes of one dossier to one device, side by side: FCM takes them
in the order of the dossier's events, never the earlier one last; and a job whose pair
another (frozen) worker still holds waits PUSH_ORDER_LOCK_TIMEOUT_SECONDS at most."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from dossiers.models import Dossier, DossierEvent
from fakes.harness import wait_until
from notifications import actions, delivery
from notifications.fcm import SendResult
from notifications.models import Delivery, Device
from notifications.payload import Push
from tests.factories import make_dossier, make_user
from tests.notifications.conftest import emit, register

pytestmark = pytest.mark.django_db(transaction=True)


class HoldingFcm:
    """FCM as the worker's requests reach it: it takes each push at once, but a push of
    the event type `held` only once `release` is set (a request still on its way)."""

    held = ""
    holding = threading.Event()
    release = threading.Event()
    taken: ClassVar[list[str]] = []
    lock = threading.Lock()

    def send(self, pushes: list[Push]) -> list[SendResult]:
        results = []
        for push in pushes:
            if push.data["type"] == HoldingFcm.held:
                HoldingFcm.holding.set()
                if not HoldingFcm.release.wait(timeout=60):
                    raise TimeoutError("the test never released the held push")
            with HoldingFcm.lock:
                HoldingFcm.taken.append(push.data["type"])
                name = f"projects/citizen-test/messages/{len(HoldingFcm.taken)}"
            results.append(SendResult(message_id=name))
        return results


@pytest.fixture
def holding_fcm(settings: Any) -> Iterator[type[HoldingFcm]]:
    settings.PUSH_BACKEND = f"{__name__}.HoldingFcm"
    HoldingFcm.held = ""
    HoldingFcm.holding = threading.Event()
    HoldingFcm.release = threading.Event()
    HoldingFcm.taken = []
    yield HoldingFcm
    HoldingFcm.release.set()  # never leave a job thread waiting


def fan_out(dossier: Dossier, kind: str) -> list[int]:
    event: DossierEvent = emit(dossier, kind)
    actions.notify_event(event.pk)
    return list(Delivery.objects.filter(notification__event=event).values_list("pk", flat=True))


def send_job(ids: list[int]) -> threading.Thread:
    """A send job on a worker thread of its own (its own database session)."""

    def run() -> None:
        try:
            with connection.cursor() as cursor:
                # A job paused by the test inside a transaction must not be ended for it.
                cursor.execute("SET idle_in_transaction_session_timeout = 0")
            delivery.send_pushes(ids)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def waits_for_a_push_order_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return bool(cursor.fetchone()[0])


def finish(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()


def states() -> list[tuple[str, str]]:
    return list(
        Delivery.objects.order_by("notification__event_id").values_list(
            "notification__type", "state"
        )
    )


def test_a_later_push_waits_until_fcm_answered_the_earlier_one(holding_fcm) -> None:
    citizen = make_user()
    register(citizen, "tok-order-answer")
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)
    holding_fcm.held = "delivery.delivered"
    # The earlier event's push is on its way to FCM...
    first = send_job(fan_out(dossier, "delivery.delivered"))
    assert holding_fcm.holding.wait(timeout=60)
    # ...when the next event of the dossier, milliseconds later, has its own job.
    second = send_job(fan_out(dossier, "dossier.handed_over"))
    wait_until(
        lambda: waits_for_a_push_order_lock() or not second.is_alive(),
        timeout=60,
        what="the second job waiting for the first one's answer, or done",
    )
    holding_fcm.release.set()
    finish(first, second)

    assert holding_fcm.taken == ["delivery.delivered", "dossier.handed_over"]
    assert states() == [("delivery.delivered", "delivered"), ("dossier.handed_over", "delivered")]


def test_two_jobs_handing_over_at_once_do_not_both_send(holding_fcm, monkeypatch) -> None:
    """The window between a job's check and its rows becoming `sending`: the earlier
    push's job has looked for a later push (there was none yet) and not yet marked its
    row when the later push is made and its job hands it over."""
    citizen = make_user()
    register(citizen, "tok-order-window")
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)
    earlier = fan_out(dossier, "delivery.delivered")
    checked, go_on = threading.Event(), threading.Event()
    check = delivery._superseded

    def pausing_after_the_check(rows: list[Delivery], now: Any) -> set[int]:
        found = check(rows, now)
        if {row.pk for row in rows} & set(earlier):
            checked.set()
            if not go_on.wait(timeout=60):
                raise TimeoutError("the test never let the first job go on")
        return found

    monkeypatch.setattr(delivery, "_superseded", pausing_after_the_check)
    first = send_job(earlier)
    assert checked.wait(timeout=60)
    second = send_job(fan_out(dossier, "dossier.handed_over"))
    wait_until(
        lambda: waits_for_a_push_order_lock() or not second.is_alive(),
        timeout=60,
        what="the second job waiting for the first one, or done",
    )
    go_on.set()
    finish(first, second)

    assert holding_fcm.taken == ["delivery.delivered", "dossier.handed_over"]
    assert states() == [("delivery.delivered", "delivered"), ("dossier.handed_over", "delivered")]


def test_an_earlier_push_waiting_for_a_later_ones_answer_is_then_dropped(holding_fcm) -> None:
    citizen = make_user()
    register(citizen, "tok-order-drop")
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)
    earlier = fan_out(dossier, "delivery.delivered")
    later = fan_out(dossier, "dossier.handed_over")
    holding_fcm.held = "dossier.handed_over"
    second = send_job(later)
    assert holding_fcm.holding.wait(timeout=60)
    first = send_job(earlier)
    wait_until(
        lambda: waits_for_a_push_order_lock() or not first.is_alive(),
        timeout=60,
        what="the first job waiting for the second one's answer, or done",
    )
    holding_fcm.release.set()
    finish(first, second)

    assert holding_fcm.taken == ["dossier.handed_over"]
    assert list(
        Delivery.objects.order_by("notification__event_id").values_list("state", "error_code")
    ) == [("permanent-failure", delivery.SUPERSEDED), ("delivered", "")]


def own_advisory_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_the_order_locks_are_released_after_the_slice_even_when_recording_fails(
    holding_fcm, monkeypatch
) -> None:
    citizen = make_user()
    register(citizen, "tok-order-release-a")
    register(citizen, "tok-order-release-b")
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)

    assert delivery.send_pushes(fan_out(dossier, "delivery.delivered")) == 2
    assert own_advisory_locks() == 0

    def failing(rows: list[Delivery], results: list[SendResult]) -> None:
        raise RuntimeError("the database went away while recording")

    monkeypatch.setattr(delivery, "_record", failing)
    with pytest.raises(RuntimeError):
        delivery.send_pushes(fan_out(dossier, "dossier.handed_over"))
    assert own_advisory_locks() == 0
    assert holding_fcm.taken == ["delivery.delivered"] * 2 + ["dossier.handed_over"] * 2


# A worker that freezes without dying (a stopped process, a stuck network) keeps its
# database session, and the order locks of the pairs it was sending with it.

# How much longer than PUSH_ORDER_LOCK_TIMEOUT_SECONDS a job may take on a busy machine
# (claiming, sending to the fake, recording).
SLACK = 5.0


@contextlib.contextmanager
def pair_held_elsewhere(device: Device, dossier: Dossier) -> Iterator[BaseDatabaseWrapper]:
    """Another database session holds the order lock of (device, dossier), as a frozen
    worker does; it ends with the block (or when the test lets go of it earlier)."""
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(%s)", [delivery._order_key(device.pk, dossier.pk)]
            )
        yield other
    finally:
        other.close()


def let_go(other: BaseDatabaseWrapper) -> None:
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock_all()")


def timed_send_job(ids: list[int]) -> tuple[threading.Thread, dict[str, Any]]:
    """`send_job` that also tells what it returned, how long it took, and how many order
    locks its session still held at its end."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["tried"] = delivery.send_pushes(ids)
            outcome["seconds"] = time.monotonic() - started
            outcome["locks_left"] = own_advisory_locks()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def last_job_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM procrastinate_jobs")
        return int(cursor.fetchone()[0])


def send_jobs_after(job_id: int) -> list[tuple[list[int], dt.datetime]]:
    """Send jobs queued after `job_id`: their deliveries and when they are due."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT args, scheduled_at FROM procrastinate_jobs WHERE id > %s "
            "AND task_name = 'notifications.send_pushes' AND status = 'todo' ORDER BY id",
            [job_id],
        )
        return [
            (
                json.loads(args)["delivery_ids"] if isinstance(args, str) else args["delivery_ids"],
                at,
            )
            for args, at in cursor.fetchall()
        ]


def unsent_and_unclaimed(pk: int) -> bool:
    row = Delivery.objects.get(pk=pk)
    return (row.state, row.attempts, row.claim_token, row.claimed_until) == (
        Delivery.State.CREATED,
        0,
        "",
        None,
    )


def test_a_pair_still_held_after_the_timeout_is_deferred_and_the_others_go(
    holding_fcm, settings, caplog
) -> None:
    settings.PUSH_ORDER_LOCK_TIMEOUT_SECONDS = 3
    citizen = make_user()
    devices = [register(citizen, f"tok-frozen-{n}") for n in range(3)]
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)
    # The largest key: the job's wait takes the other pairs' keys before it times out.
    stuck = max(devices, key=lambda device: delivery._order_key(device.pk, dossier.pk))

    # A holder that lets go within the timeout: the job waits for it, then sends it all.
    ids = fan_out(dossier, "delivery.delivered")
    jobs_before = last_job_id()
    with pair_held_elsewhere(stuck, dossier) as other:
        job, outcome = timed_send_job(ids)
        wait_until(waits_for_a_push_order_lock, timeout=30, what="the job waiting for the pair")
        let_go(other)
        finish(job)
    assert outcome["tried"] == 3
    assert send_jobs_after(jobs_before) == []

    # One that does not: the job waits the timeout, then sends the two other pushes
    # and gives back the stuck pair's, unsent.
    caplog.set_level(logging.WARNING, logger="notifications.delivery")
    ids = fan_out(dossier, "dossier.handed_over")
    (stuck_id,) = Delivery.objects.filter(pk__in=ids, device=stuck).values_list("pk", flat=True)
    with pair_held_elsewhere(stuck, dossier) as other:
        holder = other.cursor().connection.info.backend_pid
        before, jobs_before = timezone.now(), last_job_id()
        job, outcome = timed_send_job(ids)
        job.join(timeout=3 + SLACK)
        assert not job.is_alive(), "the job still waits for the frozen worker's pair"
        assert 3 <= outcome["seconds"] < 3 + SLACK
        assert outcome["tried"] == 2
        assert outcome["locks_left"] == 0
        assert unsent_and_unclaimed(stuck_id)
        ((queued, at),) = send_jobs_after(jobs_before)
        assert queued == [stuck_id]
        assert at >= before + dt.timedelta(seconds=3)  # tried again as long after
    (warning,) = [r for r in caplog.records if "push order locks" in r.getMessage()]
    assert warning.getMessage() == (
        f"push order locks of 1 (device, dossier) pairs still held after 3s by database "
        f"session(s) {holder}; push deliveries {stuck_id} queued again"
    )

    # Once the holder is gone, the retry sends it.
    assert delivery.send_pushes(queued) == 1
    assert holding_fcm.taken == ["delivery.delivered"] * 3 + ["dossier.handed_over"] * 3
    assert Delivery.objects.filter(state=Delivery.State.DELIVERED).count() == 6
    assert own_advisory_locks() == 0


def test_a_worker_frozen_mid_send_holds_back_only_the_later_push_of_its_pair(
    holding_fcm, settings
) -> None:
    settings.PUSH_ORDER_LOCK_TIMEOUT_SECONDS = 1
    citizen = make_user()
    register(citizen, "tok-frozen-order")
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)
    holding_fcm.held = "delivery.delivered"
    first = send_job(fan_out(dossier, "delivery.delivered"))
    assert holding_fcm.holding.wait(timeout=60)  # its request never comes back

    later = fan_out(dossier, "dossier.handed_over")
    jobs_before = last_job_id()
    second, outcome = timed_send_job(later)
    second.join(timeout=1 + SLACK)
    assert not second.is_alive(), "the later push's job still waits for the frozen one"
    assert first.is_alive()
    assert outcome["tried"] == 0
    assert unsent_and_unclaimed(later[0])
    assert [queued for queued, _ in send_jobs_after(jobs_before)] == [later]

    # The frozen worker comes back and records its answer; the retry goes after it.
    holding_fcm.release.set()
    finish(first)
    assert delivery.send_pushes(later) == 1
    assert holding_fcm.taken == ["delivery.delivered", "dossier.handed_over"]
    assert states() == [("delivery.delivered", "delivered"), ("dossier.handed_over", "delivered")]


@pytest.mark.parametrize("timeout", [0, -1, 0.0001])
def test_no_timeout_means_no_wait_never_an_endless_one(holding_fcm, settings, timeout) -> None:
    """0 (or less) takes what is free without waiting; a positive timeout below a
    millisecond still waits a millisecond at most (PostgreSQL reads a lock_timeout
    of 0 as no limit)."""
    settings.PUSH_ORDER_LOCK_TIMEOUT_SECONDS = timeout
    citizen = make_user()
    stuck = register(citizen, "tok-no-wait-a")
    register(citizen, "tok-no-wait-b")
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)
    ids = fan_out(dossier, "delivery.delivered")
    (stuck_id,) = Delivery.objects.filter(pk__in=ids, device=stuck).values_list("pk", flat=True)
    with pair_held_elsewhere(stuck, dossier):
        before, jobs_before = timezone.now(), last_job_id()
        job, outcome = timed_send_job(ids)
        job.join(timeout=SLACK)
        assert not job.is_alive(), "the job waits for the held pair"
        assert outcome["tried"] == 1
        assert unsent_and_unclaimed(stuck_id)
        ((queued, at),) = send_jobs_after(jobs_before)
        assert queued == [stuck_id]
        assert at >= before + dt.timedelta(seconds=1)  # not at once: a second later
    assert holding_fcm.taken == ["delivery.delivered"]


def test_pushes_are_never_sent_inside_a_transaction(holding_fcm) -> None:
    """The rows must be committed `sending` before FCM is called, and a session whose
    order locks cannot be released is ended, which cannot happen inside a transaction."""
    citizen = make_user()
    register(citizen, "tok-in-transaction")
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)
    ids = fan_out(dossier, "delivery.delivered")
    with transaction.atomic():
        with pytest.raises(TransactionManagementError, match="outside any transaction"):
            delivery.send_pushes(ids)
        assert own_advisory_locks() == 0
    assert holding_fcm.taken == []
    assert unsent_and_unclaimed(ids[0])
    assert delivery.send_pushes(ids) == 1


def test_order_locks_that_cannot_be_released_do_not_stay_on_a_pooled_connection(
    monkeypatch,
) -> None:
    """With DATABASE_POOL, Django's `close` hands the connection back to the pool, its
    session alive: a failed release must end the session itself."""
    citizen = make_user()
    device = register(citizen, "tok-pooled")
    dossier = make_dossier(citizen, status=Dossier.Status.RESULT_READY)
    ids = fan_out(dossier, "delivery.delivered")
    rows = delivery._claim(ids, "p" * 32)
    key = delivery._order_key(device.pk, dossier.pk)
    options = {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1, "max_size": 1}}
    pooled = type(connections[DEFAULT_DB_ALIAS])(
        {**connection.settings_dict, "CONN_MAX_AGE": 0, "OPTIONS": options}, "push_order_pool"
    )
    monkeypatch.setattr(delivery, "connection", pooled)
    # A release that fails while the session lives on (the worst case).
    monkeypatch.setattr(delivery, "_UNLOCK_SQL", "SELECT count(1 / 0) FROM unnest(%s::bigint[]) k")

    def holders() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
                "AND ((classid::bigint << 32) | objid::bigint) = %s",
                [key],
            )
            return [pid for (pid,) in cursor.fetchall()]

    def session_gone(pid: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            return cursor.fetchone()[0] == 0

    try:
        with delivery.dossier_push_order(rows):
            (holder,) = holders()
        # Ending the session is asynchronous on the server: its backend lets go of its
        # locks as it exits, which a busy machine can delay past the client's close.
        wait_until(lambda: session_gone(holder), timeout=30, what="the ended session's exit")
        assert holders() == []
        with pooled.cursor() as cursor:  # the pool's next connection holds nothing either
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid()"
            )
            assert cursor.fetchone()[0] == 0
    finally:
        pooled.close()
        pooled.close_pool()
