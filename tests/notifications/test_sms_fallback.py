"""Urgent events fall back to SMS when no push can reach the user; nothing else does."""

from __future__ import annotations

import pytest

from auth.sms import read_outbox
from notifications.delivery import send_fallback_sms
from notifications.models import Notification, Preference
from tests.factories import make_user
from tests.notifications.conftest import jobs, notify, register, send_all

pytestmark = pytest.mark.django_db

SMS_JOB = "notifications.send_fallback_sms"


def sms_jobs_for(notification: Notification) -> list[dict]:
    return [j for j in jobs(SMS_JOB) if j["args"] == {"notification_id": notification.pk}]


def run_sms_job(notification: Notification) -> None:
    [job] = sms_jobs_for(notification)
    send_fallback_sms(**job["args"])


def test_urgent_event_without_any_device_sends_an_sms() -> None:
    user = make_user(phone="+84912000111")

    entry = notify(user, "dossier.supplement_requested")
    run_sms_job(entry)

    entry.refresh_from_db()
    assert entry.sms_status == Notification.SmsStatus.SENT
    [sms] = read_outbox()
    assert (sms["to"], sms["purpose"]) == ("+84912000111", "notice.dossier_update")
    code = entry.dossier.code
    assert sms["text"] == (
        f"DVC: Ho so {code} can bo sung giay to. Mo ung dung Dich vu cong de xem chi tiet."
    )


def test_sms_is_in_the_users_language() -> None:
    user = make_user(language="en")
    entry = notify(user, "dossier.payment_requested")
    run_sms_job(entry)
    [sms] = read_outbox()
    code = entry.dossier.code
    assert sms["text"] == (
        f"DVC: Dossier {code} has fees to pay. Open the public services app to pay."
    )


def test_urgent_event_whose_every_push_failed_for_good_sends_an_sms(fcm) -> None:
    user = make_user()
    register(user, "tok-gone-1")
    register(user, "tok-gone-2")
    fcm.script("tok-gone-1", "UNREGISTERED")
    fcm.script("tok-gone-2", "SENDER_ID_MISMATCH")
    entry = notify(user, "dossier.completed")
    assert sms_jobs_for(entry) == []  # not while pushes may still arrive

    send_all(entry)
    run_sms_job(entry)

    assert [sms["purpose"] for sms in read_outbox()] == ["notice.dossier_update"]


def test_no_sms_when_one_push_was_delivered(fcm) -> None:
    user = make_user()
    register(user, "tok-dead")
    register(user, "tok-alive")
    fcm.script("tok-dead", "UNREGISTERED")
    entry = notify(user, "dossier.completed")

    send_all(entry)

    assert sms_jobs_for(entry) == []
    assert read_outbox() == []


def test_no_sms_while_a_push_may_still_be_retried(fcm, no_jitter) -> None:
    user = make_user()
    register(user, "tok-busy")
    fcm.script("tok-busy", "UNAVAILABLE")
    entry = notify(user, "dossier.completed")

    send_all(entry)

    assert sms_jobs_for(entry) == []


def test_no_sms_for_non_urgent_events(fcm) -> None:
    user = make_user()
    register(user, "tok-x")
    fcm.script("tok-x", "UNREGISTERED")
    entry = notify(user, "dossier.accepted")
    send_all(entry)
    no_device = notify(make_user(), "dossier.processing_started")

    assert sms_jobs_for(entry) == sms_jobs_for(no_device) == []
    assert read_outbox() == []


def test_no_sms_when_the_category_is_switched_off() -> None:
    user = make_user()
    Preference.objects.create(user=user, action_requests=False)

    entry = notify(user, "dossier.supplement_requested")

    assert sms_jobs_for(entry) == []
    assert entry.sms_status == Notification.SmsStatus.NONE


def test_the_sms_job_sends_once_even_when_run_twice() -> None:
    user = make_user()
    entry = notify(user, "dossier.completed")

    run_sms_job(entry)
    run_sms_job(entry)

    assert len(read_outbox()) == 1
