"""A send job marks a slice `sending` only when its requests can leave at once: with
more jobs than FCM connections, the rows of a job waiting for room stay only claimed,
so a worker killed meanwhile loses none of them (they are not closed INTERRUPTED)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

import pytest
from django.db import connection

from fakes.fcm import FakeFcmServer
from fakes.harness import wait_until
from notifications.delivery import fail_stale_sending, recover_pushes, send_pushes
from notifications.fcm import FcmGateway
from notifications.fcm_sender import InFlight, Slots
from notifications.models import Delivery
from notifications.payload import wire_message
from tests.factories import make_user
from tests.notifications.conftest import notify, register
from tests.notifications.test_fcm_sender import push, send_requests

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


# --- slots: the room there is, given back on the sender's loop --------------------------


def test_a_job_takes_the_room_there_is_and_each_slot_comes_back_once() -> None:
    pool = InFlight(5)
    other = pool.take(1, timeout=0)  # held throughout: the limit cannot hide a double give-back
    assert other is not None
    slots = pool.take(10, timeout=0)
    assert slots is not None
    assert (slots.count, pool.free) == (4, 0)  # the room there was, not what was wanted
    assert pool.take(1, timeout=0) is None

    slots.start()
    slots.start()  # two requests out, two slots unused
    slots.close()  # the job stops early: only the unused ones come back
    assert (pool.free, slots.count) == (2, 2)
    slots.done()  # a request out is answered: its slot comes back
    assert pool.free == 3
    slots.start()  # one started after the close holds no slot, and gives none back
    slots.done()
    assert pool.free == 3
    slots.done()
    assert (pool.free, slots.count, slots.out) == (4, 0, 0)
    slots.close()
    slots.give_back(3)
    assert pool.free == 4  # nothing given back twice
    other.close()
    assert pool.free == pool.limit == 5


def test_a_waiting_job_takes_the_first_slots_that_come_back() -> None:
    pool = InFlight(3)
    first = pool.take(3, timeout=0)
    assert first is not None
    taken: list[Slots | None] = []
    waiter = threading.Thread(target=lambda: taken.append(pool.take(3, timeout=30)))
    waiter.start()
    wait_until(lambda: pool.waiting == 1, timeout=30, what="the job waiting for room")
    first.give_back(2)  # two of three: the waiting job goes with those
    waiter.join(timeout=30)
    [slots] = taken
    assert slots is not None
    assert (slots.count, pool.free) == (2, 0)
    first.close()
    slots.close()
    assert pool.free == 3


def test_a_job_waits_for_a_quarter_of_the_connections_not_for_one_slot() -> None:
    pool = InFlight(8)
    out = pool.take(8, timeout=0)
    assert out is not None
    out.give_back(1)
    assert pool.take(4, timeout=0) is None  # one free: a slice of one would cost a slice
    assert pool.take(1, timeout=0) is not None  # ...unless one is all the job wants
    out.give_back(2)
    slots = pool.take(4, timeout=0)  # two free: a quarter of 8, taken
    assert slots is not None
    assert (slots.count, pool.free) == (2, 0)
    assert pool.least(50) == 2
    assert InFlight(100).least(50) == 25
    assert InFlight(100).least(10) == 10


@pytest.fixture
def three_connections(fcm: FakeFcmServer, settings: Any) -> FakeFcmServer:
    settings.FCM_MAX_CONNECTIONS = 3
    settings.FCM_CONCURRENCY = 3
    settings.FCM_TIMEOUT_SECONDS = 60
    return fcm


def test_a_slot_comes_back_when_its_request_is_answered_before_the_job_reads_it(
    three_connections, settings
) -> None:
    # Answers are handed to the job only once the whole call is done (the gathering
    # time is longer than the test): the slots must be back by then, freed on the loop.
    settings.FCM_RECORD_GATHER_MS = 600_000
    gateway = FcmGateway()
    pool = gateway.sender.in_flight
    other = gateway.reserve(1, timeout=0)
    slots = gateway.reserve(2, timeout=0)
    assert other is not None
    assert slots is not None
    assert (slots.count, pool.free) == (2, 0)

    answers = gateway.send_as_answered([push("tok-slot-a"), push("tok-slot-b")], slots)
    batch = next(answers)

    assert sorted(result.ok for _, result in batch) == [True, True]
    assert (pool.free, slots.count, slots.out) == (2, 0, 0)  # before the job recorded
    assert list(answers) == []
    slots.close()
    assert pool.free == 2  # not given back twice
    other.close()
    assert pool.free == 3


def test_slots_come_back_once_after_errors_timeouts_and_refused_messages(
    three_connections, settings
) -> None:
    fcm = three_connections
    settings.FCM_MAX_CONNECTIONS = 5
    settings.FCM_CONCURRENCY = 5
    settings.FCM_TIMEOUT_SECONDS = 1
    fcm.hang_seconds = 5
    fcm.fail_next("drop", path_contains="messages:send")  # closed without an answer
    fcm.fail_next("lose_answer", path_contains="messages:send")  # answered too late
    gateway = FcmGateway()
    pool = gateway.sender.in_flight
    other = gateway.reserve(1, timeout=0)
    slots = gateway.reserve(4, timeout=0)
    assert other is not None
    assert slots is not None
    refused = replace(push("tok-slot-none"), token="")  # the encoder refuses it
    pushes = [push("tok-slot-1"), push("tok-slot-2"), push("tok-slot-3"), refused]

    results = dict(pair for batch in gateway.send_as_answered(pushes, slots) for pair in batch)

    assert sorted(result.error_code for result in results.values()) == [
        "",
        "DEADLINE_EXCEEDED",
        "INVALID_ARGUMENT",
        "UNAVAILABLE",
    ]
    assert (pool.free, slots.count, slots.out) == (4, 0, 0)
    slots.close()
    assert pool.free == 4
    other.close()
    assert pool.free == 5


def test_a_cancelled_call_gives_its_slots_back(three_connections) -> None:
    fcm = three_connections
    gateway = FcmGateway()
    gateway.send([push("tok-cancel-warm")])  # the access token, fetched before the delay
    fcm.delay = 30  # held until cancelled (the server lets go when it stops)
    sender = gateway.sender
    pool = sender.in_flight
    other = gateway.reserve(1, timeout=0)
    slots = gateway.reserve(2, timeout=0)
    assert other is not None
    assert slots is not None
    bodies = [
        json.dumps({"message": wire_message(push(token))}).encode()
        for token in ("tok-cancel-a", "tok-cancel-b")
    ]
    call = sender.loop.submit(sender._send_all(bodies, 2, slots=slots))
    wait_until(lambda: fcm.held == 2 and slots.out == 2, timeout=30, what="both requests out")
    assert pool.free == 0

    call.cancel()

    wait_until(lambda: pool.free == 2, timeout=30, what="the cancelled requests' slots back")
    assert (slots.count, slots.out) == (0, 0)
    slots.close()
    other.close()
    assert pool.free == 3


def test_a_slice_starts_with_the_room_there_is_and_the_rest_waits_claimed(
    two_connections, settings
) -> None:
    fcm = two_connections
    ids = four_deliveries()
    pool = FcmGateway().sender.in_flight
    other = pool.take(1, timeout=0)  # another job's request holds one of the two
    assert other is not None
    fcm.delay = 2
    job = threading.Thread(target=send_closing, args=(ids,))
    job.start()
    try:
        wait_until(lambda: fcm.held == 1, timeout=30, what="a one-row slice out")
        states = rows(ids)
        sending = [pk for pk, (state, _, _) in states.items() if state == "sending"]
        assert sending == ids[:1]  # the first row went with the one free connection
        assert {pk: states[pk] for pk in ids[1:]} == dict.fromkeys(ids[1:], ("created", True, ""))
        fcm.delay = 0
    finally:
        other.close()
        job.join(timeout=60)
    assert not job.is_alive()
    assert rows(ids) == dict.fromkeys(ids, ("delivered", False, ""))
    assert sorted(message["token"] for message in fcm.accepted()) == [
        f"tok-room-{index}" for index in range(4)
    ]
    assert pool.free == pool.limit
