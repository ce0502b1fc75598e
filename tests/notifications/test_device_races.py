"""Registrations of one user that meet: the second waits for the first, so an
installation never keeps two active tokens (the phone would get every push twice)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from notifications.models import Device
from tests.concurrency import in_threads, on_sql, statement, waiting_for
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_tokens_of_one_installation_registered_at_once_leave_one_active() -> None:
    user = make_user()
    _, tokens = sign_in(user)
    first_api, second_api = (
        ApiClient(token=tokens.access_token),
        ApiClient(token=tokens.access_token),
    )
    first_inserted, second_moved = threading.Event(), threading.Event()

    def first() -> Any:
        # Hold the first registration, its device inserted but not committed, until
        # the second has looked for the installation's other tokens, or waits for
        # the user's lock.
        def inserted() -> None:
            first_inserted.set()
            waiting_for(second_moved)()

        with on_sql(after=(statement("INSERT", "notifications_device"), inserted)):
            return first_api.post(
                "/api/v1/devices",
                {"token": "tok-first", "platform": "android", "installation_id": "inst-1"},
            )

    def second() -> Any:
        waiting_for(first_inserted)()
        with on_sql(
            before=(statement("SELECT", "accounts_user", locking=True), second_moved.set),
            after=(statement("SELECT", "notifications_device", locking=False), second_moved.set),
        ):
            return second_api.post(
                "/api/v1/devices",
                {"token": "tok-second", "platform": "android", "installation_id": "inst-1"},
            )

    first_answer, second_answer = in_threads(first, second)

    assert (first_answer.status_code, second_answer.status_code) == (201, 201)
    assert list(Device.objects.filter(user=user, active=True).values_list("token", flat=True)) == [
        "tok-second"
    ]
    assert Device.objects.get(token="tok-first").deactivated_reason == "replaced"
