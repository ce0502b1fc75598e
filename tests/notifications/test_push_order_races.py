"""Two send jobs with pushes of one dossier to one device, side by side: FCM takes them
in the order of the dossier's events, never the earlier one last."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from django.db import connection

from dossiers.models import Dossier, DossierEvent
from fakes.harness import wait_until
from notifications import actions, delivery
from notifications.fcm import SendResult
from notifications.models import Delivery
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
