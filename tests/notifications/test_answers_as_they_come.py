"""A send job records each FCM answer as it comes, not once the slowest request of its
slice is answered: a worker killed meanwhile leaves unknown only the requests still out."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import connection

from fakes.harness import wait_until
from notifications.delivery import fail_stale_sending, send_pushes
from notifications.fcm import SendResult
from notifications.models import Delivery
from notifications.payload import Push
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


def test_answered_pushes_are_recorded_while_a_slower_one_is_still_out(fcm, settings) -> None:
    settings.FCM_TIMEOUT_SECONDS = 120
    fcm.hang_seconds = 120  # released when the fake stops, below
    user = make_user()
    for index in range(4):
        register(user, f"tok-stream-{index}")
    notification = notify(user, "dossier.accepted")
    ids = list(notification.deliveries.values_list("pk", flat=True))
    # FCM takes the first request of the slice and its answer never comes.
    fcm.fail_next("lose_answer", path_contains="messages:send")
    sending = threading.Thread(target=send_closing, args=(ids,))
    sending.start()
    try:
        # Three answers recorded, the fourth request still out: only it is unknown.
        wait_until(
            lambda: states(ids) == {"delivered": 3, "sending": 1},
            timeout=60,
            what="the three answered pushes recorded",
        )
        # A crash now: only the request still out is closed as INTERRUPTED.
        settings.PUSH_STALE_SENDING_MINUTES = -1
        assert fail_stale_sending() == 1
        assert states(ids) == {"delivered": 3, "permanent-failure": 1}
    finally:
        fcm.stop()  # the held request is dropped: the job ends
        sending.join(timeout=60)
    assert not sending.is_alive()
    # The late answer (a dropped connection) does not reopen the closed row.
    assert states(ids) == {"delivered": 3, "permanent-failure": 1}
    assert len(fcm.accepted()) == 4


class AnswersHalfThenFails:
    """A gateway that answers the first push, then fails for the rest."""

    def send_as_answered(self, pushes: list[Push]) -> Iterator[list[tuple[int, SendResult]]]:
        yield [(0, SendResult(message_id="projects/x/messages/1"))]
        raise ConnectionError("gateway lost")

    def send(self, pushes: list[Push]) -> list[SendResult]:
        raise AssertionError("the answers are taken as they come")


def test_a_gateway_failing_mid_slice_fails_only_the_pushes_not_answered(settings) -> None:
    settings.PUSH_BACKEND = f"{__name__}.AnswersHalfThenFails"
    user = make_user()
    register(user, "tok-half-a")
    register(user, "tok-half-b")
    notification = notify(user, "dossier.accepted")
    ids = sorted(notification.deliveries.values_list("pk", flat=True))

    assert send_pushes(ids) == 2

    first, second = (Delivery.objects.get(pk=pk) for pk in ids)
    assert (first.state, first.fcm_message_id) == (
        Delivery.State.DELIVERED,
        "projects/x/messages/1",
    )
    assert (second.state, second.error_code) == (
        Delivery.State.TEMPORARY_FAILURE,
        "GATEWAY_ERROR",
    )


def test_the_messages_are_built_before_the_rows_are_marked_sending(fcm, monkeypatch) -> None:
    # A worker killed between marking a slice `sending` and its requests leaving loses
    # those pushes for good: building the messages (badge counts, texts) comes first.
    from notifications import delivery

    seen: list[set[str]] = []
    build = delivery._pushes_for

    def spy(rows: list[Delivery]) -> list[Push]:
        seen.append(
            set(
                Delivery.objects.filter(pk__in=[r.pk for r in rows]).values_list("state", flat=True)
            )
        )
        return build(rows)

    monkeypatch.setattr(delivery, "_pushes_for", spy)
    user = make_user()
    register(user, "tok-built-a")
    register(user, "tok-built-b")
    notification = notify(user, "dossier.accepted")
    ids = list(notification.deliveries.values_list("pk", flat=True))

    assert send_pushes(ids) == 2

    assert seen == [{Delivery.State.CREATED}]
    assert states(ids) == {"delivered": 2}
