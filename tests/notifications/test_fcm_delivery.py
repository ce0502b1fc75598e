"""Delivery through the real firebase-admin code, against the loopback fake FCM v1 server."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from dossiers.models import Dossier
from fakes.fcm import Outcome
from notifications.delivery import retry_delay, send_pushes
from notifications.fcm import SendResult
from notifications.models import Delivery, Device, Notification
from tests.factories import make_dossier, make_user
from tests.notifications.conftest import jobs, notify, register, send_all

pytestmark = pytest.mark.django_db

SEND_JOB = "notifications.send_pushes"


def only_delivery(notification: Notification) -> Delivery:
    return notification.deliveries.get()


def test_accepted_push_is_delivered_with_fcm_message_id(fcm) -> None:
    user = make_user()
    register(user, "tok-ok")
    notification = notify(user, "dossier.completed")

    assert send_all(notification) == 1

    delivery = only_delivery(notification)
    [sent] = fcm.sent
    assert delivery.state == Delivery.State.DELIVERED
    assert delivery.fcm_message_id == sent["name"]
    assert delivery.attempts == 1
    assert fcm.token_requests == 1  # the OAuth2 token came from the fake token endpoint


def test_message_shape_for_an_urgent_event(fcm) -> None:
    user = make_user()
    register(user, "tok-shape", platform="ios")
    dossier = make_dossier(user, status=Dossier.Status.PROCESSING)
    notify(user, "dossier.processing_started", dossier=dossier)  # one unread entry before
    notification = notify(user, "dossier.supplement_requested", dossier=dossier)

    send_all(notification)

    [message] = fcm.sent_to("tok-shape")
    tag = f"dossier-{dossier.pk.hex}"
    assert message["notification"] == {
        "title": "Cần bổ sung giấy tờ",
        "body": f"Hồ sơ {dossier.code} cần bổ sung giấy tờ. Mở ứng dụng để xem và gửi bổ sung.",
    }
    assert message["data"] == {
        "type": "dossier.supplement_requested",
        "category": "action_requests",
        "urgent": "true",
        "event_id": str(notification.event_id),
        "dossier_id": str(dossier.pk),
        "dossier_code": dossier.code,
        "notification_id": str(notification.pk),
    }
    assert message["android"] == {
        "collapse_key": tag,
        "priority": "high",
        "notification": {"tag": tag, "channel_id": "action_required"},
    }
    assert message["apns"] == {
        "headers": {"apns-collapse-id": tag, "apns-priority": "10", "apns-push-type": "alert"},
        "payload": {"aps": {"badge": 2, "sound": "default", "thread-id": tag}},
    }
    assert message["webpush"] == {"headers": {"Urgency": "high", "Topic": dossier.pk.hex}}


def test_non_urgent_event_has_normal_priority_and_its_channel(fcm) -> None:
    user = make_user()
    register(user, "tok-normal")
    notification = notify(user, "delivery.in_transit")

    send_all(notification)

    [message] = fcm.sent_to("tok-normal")
    assert message["android"]["priority"] == "normal"
    assert message["android"]["notification"]["channel_id"] == "delivery_updates"
    assert message["apns"]["headers"]["apns-priority"] == "5"
    assert "sound" not in message["apns"]["payload"]["aps"]
    assert all(isinstance(value, str) for value in message["data"].values())


@pytest.mark.parametrize(
    ("answer", "reason"),
    [("UNREGISTERED", "unregistered"), ("SENDER_ID_MISMATCH", "sender_id_mismatch")],
)
def test_dead_token_answers_deactivate_the_device(fcm, answer: str, reason: str) -> None:
    user = make_user()
    device = register(user, "tok-dead")
    fcm.script("tok-dead", answer)
    notification = notify(user, "dossier.accepted")

    send_all(notification)

    delivery = only_delivery(notification)
    device.refresh_from_db()
    assert (delivery.state, delivery.error_code) == (Delivery.State.PERMANENT_FAILURE, answer)
    assert (device.active, device.deactivated_reason) == (False, reason)
    # The next event does not even try the dead token.
    later = notify(user, "dossier.processing_started")
    assert later.deliveries.count() == 0
    assert fcm.attempts_for("tok-dead") == [answer]


def test_invalid_argument_fails_the_delivery_but_keeps_the_token(fcm, caplog) -> None:
    user = make_user()
    device = register(user, "tok-invalid")
    fcm.script("tok-invalid", "INVALID_ARGUMENT")
    notification = notify(user, "dossier.accepted")

    with caplog.at_level(logging.ERROR, logger="notifications.delivery"):
        send_all(notification)

    delivery = only_delivery(notification)
    device.refresh_from_db()
    assert (delivery.state, delivery.error_code) == (
        Delivery.State.PERMANENT_FAILURE,
        "INVALID_ARGUMENT",
    )
    assert device.active is True
    assert device.deactivated_reason == ""
    assert [r.getMessage() for r in caplog.records if "INVALID_ARGUMENT" in r.getMessage()] == [
        f"FCM refused push delivery {delivery.pk} as INVALID_ARGUMENT: "
        "The registration token is not a valid FCM registration token"
    ]
    assert jobs(SEND_JOB)[1:] == []  # no retry


@pytest.mark.parametrize("answer", ["UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED"])
def test_temporary_answers_keep_the_token(fcm, no_jitter, answer: str) -> None:
    user = make_user()
    device = register(user, "tok-temp")
    fcm.script("tok-temp", answer)
    notification = notify(user, "dossier.accepted")

    send_all(notification)

    device.refresh_from_db()
    assert only_delivery(notification).state == Delivery.State.TEMPORARY_FAILURE
    assert device.active is True


def test_unavailable_retries_with_exponential_backoff(fcm, clock, no_jitter, settings) -> None:
    settings.PUSH_RETRY_BASE_SECONDS = 30
    settings.PUSH_MAX_ATTEMPTS = 5
    user = make_user()
    register(user, "tok-backoff")
    fcm.script("tok-backoff", "UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE")
    notification = notify(user, "dossier.accepted")
    delivery = only_delivery(notification)

    waits = []
    for _ in range(3):
        started = clock.now
        send_pushes([delivery.pk])
        delivery.refresh_from_db()
        assert delivery.state == Delivery.State.TEMPORARY_FAILURE
        waits.append((delivery.next_attempt_at - started).total_seconds())
        # The retry job is due exactly when the row says.
        assert jobs(SEND_JOB)[-1]["scheduled_at"] == delivery.next_attempt_at
        assert jobs(SEND_JOB)[-1]["args"] == {"delivery_ids": [delivery.pk]}
        clock.set(delivery.next_attempt_at)
    send_pushes([delivery.pk])
    delivery.refresh_from_db()

    assert waits == [30.0, 60.0, 120.0]
    assert (delivery.state, delivery.attempts) == (Delivery.State.DELIVERED, 4)
    assert fcm.attempts_for("tok-backoff") == ["UNAVAILABLE"] * 3 + ["ok"]


def test_retry_is_not_sent_before_its_time(fcm, clock, no_jitter) -> None:
    user = make_user()
    register(user, "tok-early")
    fcm.script("tok-early", "UNAVAILABLE")
    notification = notify(user, "dossier.accepted")
    send_all(notification)

    clock.advance(seconds=10)  # the backoff is 30 s
    assert send_all(notification) == 0
    assert fcm.attempts_for("tok-early") == ["UNAVAILABLE"]


@pytest.mark.parametrize(("retry_after", "wait"), [(None, 60), (5, 60), (59, 60), (120, 120)])
def test_quota_exceeded_waits_at_least_a_minute_or_retry_after(
    fcm, clock, no_jitter, retry_after: int | None, wait: int
) -> None:
    user = make_user()
    register(user, "tok-quota")
    fcm.script("tok-quota", Outcome("QUOTA_EXCEEDED", retry_after=retry_after))
    notification = notify(user, "dossier.accepted")

    send_all(notification)

    delivery = only_delivery(notification)
    assert delivery.error_code == "QUOTA_EXCEEDED"
    assert delivery.next_attempt_at == clock.now + dt.timedelta(seconds=wait)
    assert jobs(SEND_JOB)[-1]["scheduled_at"] == clock.now + dt.timedelta(seconds=wait)


def test_unavailable_with_retry_after_waits_for_it(fcm, clock, no_jitter) -> None:
    user = make_user()
    register(user, "tok-ra")
    fcm.script("tok-ra", Outcome("UNAVAILABLE", retry_after=300))
    notification = notify(user, "dossier.accepted")

    send_all(notification)

    assert only_delivery(notification).next_attempt_at == clock.now + dt.timedelta(seconds=300)


def test_retry_delays_with_jitter_stay_in_their_bounds(settings) -> None:
    settings.PUSH_RETRY_BASE_SECONDS = 30
    settings.PUSH_RETRY_MAX_SECONDS = 3600
    settings.PUSH_QUOTA_MIN_WAIT_SECONDS = 60
    unavailable = SendResult(error_code="UNAVAILABLE")
    quota = SendResult(error_code="QUOTA_EXCEEDED")
    assert [retry_delay(n, unavailable, 0.0) for n in (1, 2, 3, 8, 9)] == [30, 60, 120, 3600, 3600]
    assert [retry_delay(n, unavailable, 0.999) for n in (1, 2, 3)] == [15.1, 30.1, 60.1]
    assert retry_delay(1, quota, 0.0) == 60
    assert retry_delay(1, quota, 0.999) == 66  # never less than the minute


def test_short_retry_delays_keep_their_tenths(settings) -> None:
    # Whole seconds turned FCM's Retry-After of 1 s plus jitter into 2 s.
    settings.PUSH_RETRY_BASE_SECONDS = 1
    settings.PUSH_QUOTA_MIN_WAIT_SECONDS = 1
    assert retry_delay(1, SendResult(error_code="QUOTA_EXCEEDED", retry_after=1.0), 0.5) == 1.1
    assert retry_delay(1, SendResult(error_code="UNAVAILABLE"), 0.5) == 0.8
    assert retry_delay(2, SendResult(error_code="UNAVAILABLE"), 0.0) == 2.0
    assert retry_delay(1, SendResult(error_code="UNAVAILABLE", retry_after=1.25), 0.9) == 1.3


def test_retries_are_bounded_then_permanent_failure(fcm, clock, no_jitter, settings) -> None:
    settings.PUSH_MAX_ATTEMPTS = 3
    user = make_user()
    device = register(user, "tok-down")
    fcm.script("tok-down", *["UNAVAILABLE"] * 10)
    notification = notify(user, "dossier.accepted")
    delivery = only_delivery(notification)

    for _ in range(3):
        send_pushes([delivery.pk])
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            clock.set(delivery.next_attempt_at)
    clock.advance(hours=1)
    assert send_pushes([delivery.pk]) == 0  # nothing left to try

    device.refresh_from_db()
    assert delivery.state == Delivery.State.PERMANENT_FAILURE
    assert delivery.attempts == 3
    assert delivery.error_code == "UNAVAILABLE"
    assert delivery.error_message.startswith("Gave up after 3 tries: ")
    assert fcm.attempts_for("tok-down") == ["UNAVAILABLE"] * 3
    assert len(jobs(SEND_JOB)) == 3  # the first send and two retries, no more
    assert device.active is True


def test_sending_the_same_deliveries_twice_sends_once(fcm) -> None:
    user = make_user()
    register(user, "tok-once-a")
    register(user, "tok-once-b")
    notification = notify(user, "dossier.accepted")

    assert send_all(notification) == 2
    assert send_all(notification) == 0

    assert len(fcm.sent_to("tok-once-a")) == 1
    assert len(fcm.sent_to("tok-once-b")) == 1


def test_a_delivery_being_sent_is_not_claimed_again(fcm) -> None:
    user = make_user()
    register(user, "tok-claimed")
    notification = notify(user, "dossier.accepted")
    Delivery.objects.filter(notification=notification).update(state=Delivery.State.SENDING)

    assert send_all(notification) == 0
    assert fcm.attempts == []


def test_token_moved_meanwhile_is_not_sent_to_the_old_owner(fcm) -> None:
    first, second = make_user(), make_user()
    register(first, "tok-shared")
    notification = notify(first, "dossier.accepted")
    register(second, "tok-shared")  # the phone changed hands before the job ran

    send_all(notification)

    delivery = only_delivery(notification)
    assert (delivery.state, delivery.error_code) == (
        Delivery.State.PERMANENT_FAILURE,
        "DEVICE_INACTIVE",
    )
    assert fcm.attempts == []


def test_dead_token_does_not_deactivate_a_newer_token_of_the_device(fcm) -> None:
    user = make_user()
    device = register(user, "tok-old")
    fcm.script("tok-old", "UNREGISTERED")
    notification = notify(user, "dossier.accepted")
    from notifications.delivery import _claim, _record

    rows = _claim([only_delivery(notification).pk], "t" * 32)  # the job read "tok-old"
    Device.objects.filter(pk=device.pk).update(token="tok-new")  # re-registered meanwhile

    _record(rows, [SendResult(error_code="UNREGISTERED")])

    device.refresh_from_db()
    assert device.active is True


def test_long_texts_are_shortened_to_fit_the_payload_limit(fcm, settings) -> None:
    settings.PUSH_PAYLOAD_MAX_BYTES = 1200
    user = make_user()
    register(user, "tok-long")
    reason = "Thiếu bản sao giấy khai sinh có chứng thực. " * 200
    notification = notify(user, "dossier.refused", message=reason)

    send_all(notification)

    [message] = fcm.sent_to("tok-long")
    body = message["notification"]["body"]
    without_token = {key: value for key, value in message.items() if key != "token"}
    size = len(json.dumps(without_token, ensure_ascii=False, separators=(",", ":")).encode())
    assert 1190 < size <= 1200
    assert body.startswith(f"Hồ sơ {notification.dossier.code} không được tiếp nhận. Lý do: ")
    assert body.endswith("…")
    assert len(body) < len(notification.body)
    assert only_delivery(notification).state == Delivery.State.DELIVERED


def test_while_fcm_throttles_other_jobs_wait_without_spending_tries(fcm, clock, no_jitter) -> None:
    first_user, second_user = make_user(), make_user()
    register(first_user, "tok-q1")
    register(second_user, "tok-q2")
    fcm.script("tok-q1", Outcome("QUOTA_EXCEEDED", retry_after=90))
    first = notify(first_user, "dossier.accepted")
    second = notify(second_user, "dossier.accepted")
    send_all(first)

    assert send_all(second) == 0

    waiting = only_delivery(second)
    assert (waiting.state, waiting.attempts) == (Delivery.State.CREATED, 0)
    assert fcm.attempts_for("tok-q2") == []
    assert jobs(SEND_JOB)[-1] == {
        "args": {"delivery_ids": [waiting.pk]},
        "status": "todo",
        "scheduled_at": clock.now + dt.timedelta(seconds=90),
    }
    clock.advance(seconds=90)
    assert send_all(second) == 1
    assert fcm.attempts_for("tok-q2") == ["ok"]
