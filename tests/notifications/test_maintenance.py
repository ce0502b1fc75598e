"""Token hygiene over time, the periodic jobs, and support's test push from the admin."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from auth.actions.sessions import revoke_session
from auth.models import DeviceSession
from fakes.harness import wait_until
from notifications.delivery import (
    fail_stale_sending,
    prune_devices,
    retire_devices_of_ended_sessions,
    sendable_devices,
)
from notifications.models import Delivery, Device, Notification
from tests.conftest import make_user, sign_in
from tests.notifications.conftest import notify, register, send_all, todo_jobs

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def age(device: Device, days: float) -> None:
    """Make the device and its session last seen `days` ago."""
    moment = timezone.now() - dt.timedelta(days=days)
    Device.objects.filter(pk=device.pk).update(last_seen_at=moment)
    DeviceSession.objects.filter(pk=device.session_id).update(last_seen_at=moment)


def test_tokens_unseen_for_30_days_are_not_sent_to(settings) -> None:
    settings.DEVICE_STALE_DAYS = 30
    user = make_user()
    fresh = register(user, "tok-29")
    stale = register(user, "tok-31")
    age(fresh, 29.9)
    age(stale, 30.1)

    assert list(sendable_devices().filter(user=user)) == [fresh]
    assert [d.device_id for d in notify(user, "dossier.accepted").deliveries.all()] == [fresh.pk]


def test_a_session_used_recently_keeps_its_token_fresh(settings) -> None:
    user = make_user()
    device = register(user, "tok-app-in-use")
    age(device, 40)
    DeviceSession.objects.filter(pk=device.session_id).update(last_seen_at=timezone.now())

    assert list(sendable_devices().filter(user=user)) == [device]


def test_prune_deletes_tokens_unseen_for_270_days_only(settings) -> None:
    settings.DEVICE_PRUNE_DAYS = 270
    user = make_user()
    kept = register(user, "tok-269")
    pruned = register(user, "tok-271")
    age(kept, 269.9)
    age(pruned, 270.1)

    assert prune_devices() == 1

    assert list(Device.objects.values_list("pk", flat=True)) == [kept.pk]


def test_housekeeping_retires_devices_of_ended_sessions() -> None:
    user = make_user()
    session, _ = sign_in(user)
    device = register(user, "tok-signed-out", session=session)
    other = register(user, "tok-signed-in")
    revoke_session(session, reason="logout")

    assert retire_devices_of_ended_sessions() == 1

    device.refresh_from_db()
    other.refresh_from_db()
    assert (device.active, device.deactivated_reason) == (False, "session_ended")
    assert other.active is True


def test_housekeeping_retires_devices_of_sessions_past_their_max_age(settings) -> None:
    settings.SESSION_MAX_AGE_DAYS = 30
    user = make_user()
    old, _ = sign_in(user)
    recent, _ = sign_in(user)
    expired = register(user, "tok-old-session", session=old)
    kept = register(user, "tok-recent-session", session=recent)
    now = timezone.now()
    DeviceSession.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=30.01))
    DeviceSession.objects.filter(pk=recent.pk).update(created_at=now - dt.timedelta(days=29.99))

    assert retire_devices_of_ended_sessions() == 1

    expired.refresh_from_db()
    kept.refresh_from_db()
    assert (expired.active, expired.deactivated_reason) == (False, "session_ended")
    assert kept.active is True


def test_deliveries_stuck_in_sending_are_failed_not_resent(settings) -> None:
    settings.PUSH_STALE_SENDING_MINUTES = 15
    user = make_user()
    register(user, "tok-crash")
    register(user, "tok-recent")
    entry = notify(user, "dossier.accepted")
    crashed, recent = entry.deliveries.order_by("pk")
    now = timezone.now()
    Delivery.objects.filter(pk=crashed.pk).update(
        state="sending", last_attempt_at=now - dt.timedelta(minutes=16)
    )
    Delivery.objects.filter(pk=recent.pk).update(
        state="sending", last_attempt_at=now - dt.timedelta(minutes=14)
    )

    assert fail_stale_sending() == 1

    crashed.refresh_from_db()
    recent.refresh_from_db()
    assert (crashed.state, crashed.error_code) == ("permanent-failure", "INTERRUPTED")
    assert recent.state == "sending"
    assert send_all(entry) == 0


def test_staff_sends_a_test_push_from_the_admin_and_sees_the_deliveries(fcm) -> None:
    staff = make_user(is_staff=True, is_superuser=True)
    citizen = make_user(language="en")
    device = register(citizen, "tok-support")
    browser = Client()
    browser.force_login(staff)

    response = browser.post(
        "/admin/notifications/device/",
        {"action": "send_test_push_action", "_selected_action": [device.pk]},
        follow=True,
    )

    assert response.status_code == 200
    entry = Notification.objects.get(user=citizen)
    assert (entry.type, entry.title) == ("test", "Test notification")
    send_all(entry)
    [message] = fcm.sent_to("tok-support")
    assert message["notification"]["title"] == "Test notification"
    delivery = entry.deliveries.get()
    assert delivery.state == "delivered"
    page = browser.get(f"/admin/notifications/notification/{entry.pk}/change/")
    assert page.status_code == 200
    assert delivery.fcm_message_id in page.content.decode()
    listing = browser.get("/admin/notifications/device/").content.decode()
    assert "tok-support" not in listing  # the token itself is never shown
    assert device.masked_token in listing


def test_fake_fcm_server_runs_for_developers(tmp_path: Path) -> None:
    credentials = tmp_path / "sa.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fakes.fcm",
            "--port",
            "0",
            "--credentials",
            str(credentials),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # As a background job of a shell without job control starts it (CI scripts,
        # `cmd &`): with SIGINT ignored, which Python keeps unless told otherwise.
        preexec_fn=_ignore_sigint,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        command = process.stdout.readline()
        match = re.search(r"FCM_API_BASE=(http://127\.0\.0\.1:\d+)", command)
        assert match, command
        # Serving, not just printing: Ctrl-C then lands in the serve loop, as a
        # developer's does (a signal during the banner's print ended it uncleanly).
        wait_until(lambda: _answers(match[1]), timeout=60, what="the fake FCM answering")
    finally:
        process.send_signal(signal.SIGINT)
        # Ending is the condition; the bound only keeps a real hang from blocking the
        # suite (a starved 2-core machine took more than 10 s to run the exit).
        returncode = process.wait(timeout=120)
    assert returncode == 0  # Ctrl-C stops it cleanly
    assert f"FCM_CREDENTIALS_FILE={credentials}" in command
    assert credentials.exists()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _answers(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/", timeout=5)
    except httpx.TransportError:
        return False
    return True


def test_without_credentials_the_fcm_backend_fails_softly_and_retries(settings) -> None:
    settings.PUSH_BACKEND = "fcm"
    settings.FCM_CREDENTIALS_FILE = ""
    user = make_user()
    register(user, "tok-nocreds")
    entry = notify(user, "dossier.accepted")

    send_all(entry)

    delivery = entry.deliveries.get()
    assert (delivery.state, delivery.error_code, delivery.error_message) == (
        "temporary-failure",
        "GATEWAY_ERROR",
        "ImproperlyConfigured",
    )


def test_embedded_default_runs_the_whole_chain_after_commit(settings, embedded_jobs) -> None:
    settings.PUSH_BACKEND = "file"
    user = make_user()
    register(user, "tok-inline")
    from dossiers.models import Dossier
    from notifications.fcm import read_push_outbox
    from tests.factories import make_dossier
    from tests.notifications.conftest import emit

    dossier = make_dossier(user, status=Dossier.Status.PROCESSING)
    emit(dossier, "dossier.accepted")
    embedded_jobs.wait_idle()

    [line] = read_push_outbox()
    assert line["message"]["token"] == "tok-inline"
    assert Delivery.objects.get().state == "delivered"


def test_an_urgent_notice_whose_pushes_were_interrupted_gets_its_sms(settings) -> None:
    # Whether FCM took an interrupted push is unknown: an urgent notice is not left to
    # chance. A notice still being delivered to another device waits for that one.
    settings.PUSH_STALE_SENDING_MINUTES = 15
    user = make_user()
    register(user, "tok-urgent-crash")
    urgent = notify(user, "dossier.supplement_requested")
    other_user = make_user()
    register(other_user, "tok-urgent-crash-a")
    register(other_user, "tok-urgent-crash-b")
    pending = notify(other_user, "dossier.supplement_requested")
    routine_user = make_user()
    register(routine_user, "tok-routine-crash")
    routine = notify(routine_user, "dossier.accepted")
    assert [n.urgent for n in (urgent, pending, routine)] == [True, True, False]
    long_ago = timezone.now() - dt.timedelta(minutes=16)
    Delivery.objects.filter(notification__in=[urgent, routine]).update(
        state="sending", last_attempt_at=long_ago
    )
    first, _ = pending.deliveries.order_by("pk")
    Delivery.objects.filter(pk=first.pk).update(state="sending", last_attempt_at=long_ago)

    assert fail_stale_sending() == 3

    for entry in (urgent, pending, routine):
        entry.refresh_from_db()
    assert urgent.sms_status == Notification.SmsStatus.PENDING
    assert pending.sms_status == Notification.SmsStatus.NONE  # its other push is still due
    assert routine.sms_status == Notification.SmsStatus.NONE
    assert [job["args"] for job in todo_jobs("notifications.send_fallback_sms")] == [
        {"notification_id": urgent.pk}
    ]
