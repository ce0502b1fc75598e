"""A send job marks a slice `sending` only when its requests can leave at once: with
more jobs than FCM connections, the rows of a job waiting for room stay only claimed,
so a worker killed meanwhile loses none of them (they are not closed INTERRUPTED)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from fakes.fcm import FakeFcmServer
from fakes.harness import wait_until
from notifications.delivery import fail_stale_sending, recover_pushes, send_pushes
from notifications.fcm import FcmGateway
from notifications.models import Delivery
from tests.factories import make_user
from tests.notifications.conftest import notify, register
from tests.notifications.test_fcm_sender import send_requests

pytestmark = pytest.mark.django_db(transaction=True)


def send_closing(ids: list[int]) -> None:
    try:
        send_pushes(ids)
    finally:
        connection.close()  # this thread's connection: the test database is dropped later


def rows(ids: list[int]) -> dict[int, tuple[str, bool, str]]:
    """Each row's state, whether a live claim holds it, and its error code."""
    return {
        pk: (state, bool(token) and until is not None, code)
        for pk, state, token, until, code in Delivery.objects.filter(pk__in=ids).values_list(
            "pk", "state", "claim_token", "claimed_until", "error_code"
        )
    }


@pytest.fixture
def two_connections(fcm: FakeFcmServer, settings: Any) -> FakeFcmServer:
    settings.FCM_MAX_CONNECTIONS = 2
    settings.FCM_CONCURRENCY = 2
    settings.FCM_TIMEOUT_SECONDS = 60  # the held answers below are not timeouts
    return fcm


def four_deliveries() -> list[int]:
    user = make_user()
    for index in range(4):
        register(user, f"tok-room-{index}")
    notification = notify(user, "dossier.accepted")
    return sorted(notification.deliveries.values_list("pk", flat=True))


def test_rows_waiting_for_a_connection_are_claimed_not_sending(two_connections, settings) -> None:
    fcm = two_connections
    ids = four_deliveries()
    in_flight = FcmGateway().sender.in_flight
    fcm.delay = 5  # the answers of the first job's requests are held that long
    jobs = [threading.Thread(target=send_closing, args=(part,)) for part in (ids[:2], ids[2:])]
    for job in jobs:
        job.start()
    try:
        # One job's two requests fill both connections; the other job waits for room.
        wait_until(
            lambda: fcm.held == 2 and in_flight.waiting == 1,
            timeout=30,
            what="one job sending, the other waiting for a connection",
        )
        states = rows(ids)
        sending = [pk for pk, (state, _, _) in states.items() if state == "sending"]
        waiting = [pk for pk in ids if pk not in sending]
        assert len(sending) == 2
        assert sorted(sending) in (ids[:2], ids[2:])  # one whole job
        # The waiting job's rows: only claimed (a crash leaves them to recovery).
        assert {pk: states[pk] for pk in waiting} == dict.fromkeys(waiting, ("created", True, ""))
        assert len(send_requests(fcm)) == 2  # held by the fake, not answered yet

        # A worker killed now: only the requests out are closed; none that never left.
        settings.PUSH_STALE_SENDING_MINUTES = -1
        assert fail_stale_sending() == 2
        states = rows(ids)
        assert {pk: states[pk] for pk in sending} == dict.fromkeys(
            sending, ("permanent-failure", False, "INTERRUPTED")
        )
        assert {pk: states[pk][0] for pk in waiting} == dict.fromkeys(waiting, "created")
        fcm.delay = 0  # the waiting job's requests are answered at once
    finally:
        for job in jobs:
            job.join(timeout=60)
    assert not any(job.is_alive() for job in jobs)
    states = rows(ids)
    # The waiting rows went once the room came; the closed ones stay closed (their
    # late answers do not reopen them); every push left once.
    assert {pk: states[pk] for pk in waiting} == dict.fromkeys(waiting, ("delivered", False, ""))
    assert {pk: states[pk][2] for pk in sending} == dict.fromkeys(sending, "INTERRUPTED")
    with fcm.lock:
        tokens = sorted(attempt["token"] for attempt in fcm.attempts)
    assert tokens == [f"tok-room-{index}" for index in range(4)]
    assert in_flight.free == in_flight.limit


def test_a_crash_while_waiting_for_room_leaves_the_rows_to_recovery(
    two_connections, settings
) -> None:
    fcm = two_connections
    ids = four_deliveries()
    in_flight = FcmGateway().sender.in_flight
    held = in_flight.take(2, timeout=0)  # another job's requests fill both connections
    assert held is not None
    job = threading.Thread(target=send_closing, args=(ids,))
    job.start()
    try:
        wait_until(lambda: in_flight.waiting == 1, timeout=30, what="the job waiting for room")
        # Nothing was marked, nothing sent: the claim only.
        assert rows(ids) == dict.fromkeys(ids, ("created", True, ""))
        assert fcm.accepted() == []
        settings.PUSH_STALE_SENDING_MINUTES = -1
        assert fail_stale_sending() == 0
    finally:
        held.close()
        job.join(timeout=60)
    assert not job.is_alive()
    # The room came: each push sent once, as one job.
    assert rows(ids) == dict.fromkeys(ids, ("delivered", False, ""))
    assert sorted(message["token"] for message in fcm.accepted()) == [
        f"tok-room-{index}" for index in range(4)
    ]
    assert in_flight.free == in_flight.limit


def test_the_claim_is_renewed_while_the_job_waits_for_room(two_connections, settings) -> None:
    settings.PUSH_CLAIM_LEASE_SECONDS = 1  # renewed every half second of waiting
    ids = four_deliveries()
    in_flight = FcmGateway().sender.in_flight
    held = in_flight.take(2, timeout=0)
    assert held is not None
    job = threading.Thread(target=send_closing, args=(ids,))
    job.start()
    try:
        wait_until(lambda: in_flight.waiting == 1, timeout=30, what="the job waiting for room")
        first = dict(Delivery.objects.filter(pk__in=ids).values_list("pk", "claimed_until"))
        wait_until(
            lambda: all(
                until > first[pk]
                for pk, until in Delivery.objects.filter(pk__in=ids).values_list(
                    "pk", "claimed_until"
                )
            ),
            timeout=30,
            what="the claim renewed during the wait",
        )
        # Recovery does not take rows whose job is only waiting for a connection.
        assert recover_pushes() == 0
        assert rows(ids) == dict.fromkeys(ids, ("created", True, ""))
    finally:
        held.close()
        job.join(timeout=60)
    assert not job.is_alive()
    assert rows(ids) == dict.fromkeys(ids, ("delivered", False, ""))


def test_a_slice_is_never_larger_than_the_connections(two_connections) -> None:
    fcm = two_connections
    two_connections.delay = 0.05
    ids = four_deliveries()

    assert send_pushes(ids) == 4

    assert rows(ids) == dict.fromkeys(ids, ("delivered", False, ""))
    assert fcm.peak_concurrency == 2
    in_flight = FcmGateway().sender.in_flight
    assert in_flight.free == in_flight.limit


def test_slots_come_back_when_the_whole_call_fails(two_connections) -> None:
    fcm = two_connections
    # Both slices' calls (two rows each) fail as a whole: no access token.
    fcm.fail_next("error", status=400, code="invalid_grant", path_contains="/token", times=2)
    ids = four_deliveries()

    send_pushes(ids)

    states = rows(ids)
    assert {state for state, _, _ in states.values()} == {"temporary-failure"}
    assert fcm.accepted() == []
    in_flight = FcmGateway().sender.in_flight
    assert in_flight.free == in_flight.limit
