"""A row is marked `sending` only when its request has a connection in hand, right
before it is written: a worker killed while requests wait (for a connection, a
token, the event loop) loses none of them, and a request whose row another job
took over in the meantime is never written."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from fakes.harness import wait_until
from notifications import delivery
from notifications.delivery import fail_stale_sending, recover_pushes, send_pushes
from notifications.fcm import FcmGateway
from notifications.models import Delivery
from tests.factories import make_user
from tests.notifications.conftest import notify, register

pytestmark = pytest.mark.django_db(transaction=True)


def states(ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in Delivery.objects.filter(pk__in=ids).values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


def send_closing(ids: list[int]) -> None:
    try:
        send_pushes(ids)
    finally:
        connection.close()  # this thread's connection: the test database is dropped later


def four_deliveries(prefix: str) -> tuple[list[int], list[str]]:
    user = make_user()
    tokens = [f"{prefix}-{index}" for index in range(4)]
    for token in tokens:
        register(user, token)
    notification = notify(user, "dossier.accepted")
    return sorted(notification.deliveries.values_list("pk", flat=True)), tokens


def test_a_worker_killed_while_requests_wait_for_a_connection_loses_none(fcm, settings) -> None:
    settings.FCM_MAX_CONNECTIONS = 1  # one connection for the whole slice of four
    settings.FCM_CONCURRENCY = 4
    settings.FCM_TIMEOUT_SECONDS = 120
    fcm.hang_seconds = 120  # released below
    ids, tokens = four_deliveries("tok-wait")
    # FCM takes the first request and its answer never comes: the connection stays busy.
    fcm.fail_next("lose_answer", path_contains="messages:send")
    sending = threading.Thread(target=send_closing, args=(ids,))
    sending.start()
    try:
        # The request out is `sending`; the three waiting for the connection are only
        # claimed: nothing of theirs has left.
        wait_until(
            lambda: states(ids) == {"sending": 1, "created": 3},
            timeout=60,
            what="one request out, three waiting for the connection",
        )
        waiting = list(Delivery.objects.filter(pk__in=ids, state=Delivery.State.CREATED))
        assert [(row.attempts, bool(row.claim_token)) for row in waiting] == [(0, True)] * 3
        assert len(fcm.accepted()) == 1

        # The worker is killed now; the periodic jobs do what they do after a crash.
        settings.PUSH_STALE_SENDING_MINUTES = -1
        assert fail_stale_sending() == 1  # the request out: never sent again
        Delivery.objects.filter(pk__in=[row.pk for row in waiting]).update(
            claimed_until=timezone.now() - timezone.timedelta(seconds=1)
        )
        assert recover_pushes() == 3  # the waiting ones: queued again

        # The "dead" job gets its connection back: its rows are no longer its own,
        # so not one of its requests is written.
        fcm.release_holds()
        sending.join(timeout=60)
        assert not sending.is_alive()
        assert len(fcm.accepted()) == 1
        waiting_tokens = [row.device.token for row in waiting]
        assert [fcm.attempts_for(token) for token in waiting_tokens] == [[]] * 3
        assert states(ids) == {"permanent-failure": 1, "created": 3}

        # The job recovery queued sends each of them, once.
        assert send_pushes([row.pk for row in waiting]) == 3
    finally:
        fcm.release_holds()
        sending.join(timeout=60)
    assert states(ids) == {"permanent-failure": 1, "delivered": 3}
    assert sorted(len(fcm.sent_to(token)) for token in tokens) == [1, 1, 1, 1]


def test_a_request_is_handed_over_only_with_its_connection_in_hand(fcm, settings) -> None:
    # What the row's state was when each request reached FCM: `sending`, every time,
    # and the mark came no earlier than the connection (one connection, in turn).
    settings.FCM_MAX_CONNECTIONS = 1
    settings.FCM_CONCURRENCY = 4
    ids, tokens = four_deliveries("tok-in-hand")
    marks: list[list[int]] = []
    real = delivery._hand_to_fcm

    def spy(rows: list[Delivery], token: str) -> list[Delivery]:
        marks.append([row.pk for row in rows])
        return real(rows, token)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(delivery, "_hand_to_fcm", spy)
        assert send_pushes(ids) == 4

    # One connection: each request waited for the one before it to be answered, so
    # each was marked on its own, never the slice at once.
    assert sorted(pk for mark in marks for pk in mark) == ids
    assert [len(mark) for mark in marks] == [1, 1, 1, 1]
    assert states(ids) == {"delivered": 4}
    assert [fcm.attempts_for(token) for token in tokens] == [["ok"]] * 4


def test_requests_still_waiting_when_the_job_fails_are_never_sent(fcm, settings) -> None:
    settings.FCM_MAX_CONNECTIONS = 1
    settings.FCM_CONCURRENCY = 4
    ids, tokens = four_deliveries("tok-gone")
    rows = list(Delivery.objects.filter(pk__in=ids).select_related("device", "notification"))
    pushes = delivery._pushes_for(rows)
    asked: list[list[int]] = []

    def hand_over(indices: list[int]) -> set[int]:
        asked.append(indices)
        raise ConnectionError("database gone")  # the job's thread fails here

    gateway = FcmGateway()
    with pytest.raises(ConnectionError):
        list(gateway.send_as_answered(pushes, hand_over=hand_over))
    assert len(asked) == 1

    # The refused request and the three still waiting end without a byte written:
    # the one connection is free again for the next send, which goes through.
    after: list[Any] = []
    done = threading.Thread(target=lambda: after.extend(gateway.send(pushes[:1])))
    done.start()
    done.join(timeout=60)
    assert not done.is_alive()
    assert [result.ok for result in after] == [True]
    assert sum(len(fcm.sent_to(token)) for token in tokens) == 1
