"""What the push worker pays per push: a send job runs the same SQL statements
whatever the number of its pushes (ids and answers travel as one array or JSON
parameter each, never one parameter per row), firebase-admin's encoder runs once per
notification, not once per device, and neither the fan-out nor a send job makes a
model instance per entry, delivery or device."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.db.models.signals import post_init
from firebase_admin import messaging

from notifications import actions
from notifications.delivery import send_pushes
from notifications.models import Delivery, Device, Notification
from tests.factories import make_user
from tests.notifications.conftest import emit, notify, register
from tests.notifications.test_fan_out_bulk import organisation_dossier

pytestmark = pytest.mark.django_db


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL texts executed meanwhile, as given to the driver (placeholders, not
    values), savepoint names left out (they count up)."""
    found: list[str] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        found.append(re.sub(r'"?s\d+_x\d+"?', "<savepoint>", sql))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield found


def send_job_statements(members: int) -> list[str]:
    dossier, _ = organisation_dossier(members=members)
    actions.notify_event(emit(dossier, "dossier.accepted").pk)
    ids = list(Delivery.objects.filter(notification__dossier=dossier).values_list("pk", flat=True))
    with statements() as found:
        assert send_pushes(ids) == 2 * members
    assert set(
        Delivery.objects.filter(notification__dossier=dossier).values_list("state", flat=True)
    ) == {Delivery.State.DELIVERED}
    return found


def test_a_send_job_runs_the_same_statements_for_4_pushes_or_48(settings, tmp_path) -> None:
    # One slice either way, answered all at once (the file outbox): the same work.
    settings.PUSH_BACKEND = "file"
    settings.OUTBOX_DIR = str(tmp_path)
    settings.FCM_CONCURRENCY = 50
    settings.FCM_BATCH_SIZE = 500

    few = send_job_statements(members=2)
    many = send_job_statements(members=24)

    assert many == few, "\n".join(sorted(set(many) - set(few)))


def test_a_notification_is_encoded_once_for_all_its_devices(fcm, monkeypatch) -> None:
    encode = messaging._MessagingService.encode_message
    encoded: list[Any] = []

    def counting(message: messaging.Message) -> Any:
        encoded.append(message.token)
        return encode(message)

    monkeypatch.setattr(messaging._MessagingService, "encode_message", staticmethod(counting))
    citizen = make_user()
    tokens = [f"tok-once-{n}" for n in range(3)]
    for token in tokens:
        register(citizen, token)
    notification = notify(citizen, "dossier.accepted")

    assert send_pushes(list(notification.deliveries.values_list("pk", flat=True))) == 3

    assert len(encoded) == 1
    sent = {token: fcm.sent_to(token) for token in tokens}
    assert all(len(messages) == 1 for messages in sent.values())
    # Each device got the one encoding with its own token.
    assert [message["token"] for [message] in sent.values()] == tokens
    first, *others = ({k: v for k, v in m.items() if k != "token"} for [m] in sent.values())
    assert others == [first, first]
    assert first["data"]["notification_id"] == str(notification.pk)


@contextmanager
def instances() -> Iterator[list[str]]:
    """The names of the models of the notifications app instantiated meanwhile."""
    made: list[str] = []

    def record(sender: type, **kwargs: Any) -> None:
        made.append(sender.__name__)

    for model in (Notification, Delivery, Device):
        post_init.connect(record, sender=model, weak=False)
    try:
        yield made
    finally:
        for model in (Notification, Delivery, Device):
            post_init.disconnect(record, sender=model)


def test_neither_the_fan_out_nor_the_send_job_makes_a_model_instance_per_push(
    settings, tmp_path
) -> None:
    settings.PUSH_BACKEND = "file"
    settings.OUTBOX_DIR = str(tmp_path)
    dossier, _ = organisation_dossier(members=6)
    event = emit(dossier, "dossier.accepted")

    with instances() as made:
        assert actions.notify_event(event.pk) == 6
    assert made == []
    ids = list(Delivery.objects.filter(notification__event=event).values_list("pk", flat=True))
    assert len(ids) == 12

    with instances() as made:
        assert send_pushes(ids) == 12
    assert made == []
    assert Notification.objects.filter(event=event).count() == 6
    assert set(Delivery.objects.filter(pk__in=ids).values_list("state", flat=True)) == {
        Delivery.State.DELIVERED
    }
