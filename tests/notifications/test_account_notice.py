"""A support reset tells the citizen by push on the devices of the sessions it revoked."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction

from auth.actions import support
from auth.actions.sessions import revoke_session
from auth.models import User
from dossiers.models import Dossier
from fakes.fcm import FakeFcmServer
from notifications import actions
from notifications.delivery import send_pushes
from notifications.models import Delivery, Notification
from notifications.templates import ACCOUNT_TEMPLATES
from tests.accounts.staff import make_citizen, make_staff
from tests.conftest import sign_in
from tests.factories import make_dossier
from tests.notifications.conftest import emit, jobs, register, run_worker_until_idle

pytestmark = pytest.mark.django_db(transaction=True)

TEMPLATE = ACCOUNT_TEMPLATES["account.support_reset"]


def open_level1_reset(citizen: User) -> support.SupportReset:
    return support.open_reset(
        make_staff(),
        citizen,
        kind="lost_authenticator",
        reason="Phone with the authenticator app was stolen",
        evidence="CCCD checked in person at the counter",
        ticket_number="HT-2026-0042",
    )


def citizen_with_devices(language: str) -> tuple[User, list[str]]:
    """Two devices on two live sessions, one on an older session revoked before."""
    citizen = make_citizen(language=language)
    register(citizen, "tok-live-1")
    register(citizen, "tok-live-2")
    old_session, _ = sign_in(citizen)
    register(citizen, "tok-old", session=old_session)
    revoke_session(old_session, reason="logout")
    live_ids = sorted(
        str(pk)
        for pk in citizen.device_sessions.filter(revoked_at=None).values_list("pk", flat=True)
    )
    return citizen, live_ids


def notice_jobs() -> list[dict[str, Any]]:
    return jobs("notifications.account_notice")


@pytest.mark.parametrize("language", ["en", "vi"])
def test_a_reset_pushes_the_notice_to_the_devices_of_the_sessions_it_revoked(
    fcm: FakeFcmServer, language: str
) -> None:
    citizen, live_ids = citizen_with_devices(language)

    reset = open_level1_reset(citizen)
    [job] = [j for j in notice_jobs() if j["args"]["user_id"] == str(citizen.pk)]
    assert job["args"] == {
        "user_id": str(citizen.pk),
        "kind": "support_reset",
        "session_ids": live_ids,
        "reference": str(reset.pk),
    }
    run_worker_until_idle()
    run_worker_until_idle()

    notification = Notification.objects.get(user=citizen)
    title, body = TEMPLATE.en if language == "en" else TEMPLATE.vi
    assert (notification.type, notification.category, notification.urgent) == (
        "account.support_reset",
        "announcements",
        True,
    )
    assert (notification.title, notification.body) == (title, body)
    assert sorted(Delivery.objects.values_list("device__token", "state")) == [
        ("tok-live-1", "delivered"),
        ("tok-live-2", "delivered"),
    ]
    for token in ("tok-live-1", "tok-live-2"):
        [message] = fcm.sent_to(token)
        assert message["notification"] == {"title": title, "body": body}
        assert message["data"]["type"] == "account.support_reset"
        assert message["data"]["reference"] == str(reset.pk)
    assert fcm.sent_to("tok-old") == []
    assert citizen.device_sessions.filter(revoked_at=None).count() == 0


def test_the_notice_job_run_twice_pushes_once(fcm: FakeFcmServer) -> None:
    citizen, live_ids = citizen_with_devices("vi")
    reset = open_level1_reset(citizen)
    run_worker_until_idle()
    run_worker_until_idle()

    again = actions.notify_account(
        str(citizen.pk), kind="support_reset", session_ids=live_ids, reference=str(reset.pk)
    )

    assert again == 0
    assert Notification.objects.filter(user=citizen).count() == 1
    assert [len(fcm.sent_to(t)) for t in ("tok-live-1", "tok-live-2")] == [1, 1]


def test_dossier_pushes_to_the_revoked_sessions_are_still_refused(fcm: FakeFcmServer) -> None:
    citizen, _ = citizen_with_devices("vi")
    dossier = make_dossier(citizen, status=Dossier.Status.PROCESSING)
    before = emit(dossier, "dossier.processing_started")
    actions.notify_event(before.pk)  # deliveries made while the sessions were live
    pending = list(Delivery.objects.filter(notification__event=before).values_list("pk", flat=True))
    assert len(pending) == 2

    open_level1_reset(citizen)
    run_worker_until_idle()
    run_worker_until_idle()
    assert send_pushes(pending) == 0  # the claim refuses them
    after = emit(dossier, "dossier.processing_started")
    actions.notify_event(after.pk)

    assert (
        sorted(
            Delivery.objects.filter(notification__event=before).values_list("state", "error_code")
        )
        == [("permanent-failure", "DEVICE_INACTIVE")] * 2
    )
    assert Delivery.objects.filter(notification__event=after).count() == 0
    assert [len(fcm.sent_to(t)) for t in ("tok-live-1", "tok-live-2", "tok-old")] == [1, 1, 0]
    assert all(
        m["data"]["type"] == "account.support_reset"
        for t in ("tok-live-1", "tok-live-2")
        for m in fcm.sent_to(t)
    )


class RollbackError(Exception):
    pass


def reset_then_fail(staff: User, citizen: User, seen: list[int]) -> None:
    with transaction.atomic():
        support.open_reset(
            staff,
            citizen,
            kind="lost_authenticator",
            reason="Phone with the authenticator app was stolen",
            evidence="CCCD checked in person at the counter",
            ticket_number="HT-2026-0042",
        )
        seen.append(len(notice_jobs()))
        raise RollbackError


def test_a_rolled_back_reset_pushes_nothing(fcm: FakeFcmServer) -> None:
    citizen, _ = citizen_with_devices("vi")
    staff = make_staff()
    queued_before = len(notice_jobs())

    seen: list[int] = []
    with pytest.raises(RollbackError):
        reset_then_fail(staff, citizen, seen)
    assert seen == [queued_before + 1]  # deferred inside the transaction...
    run_worker_until_idle()

    assert len(notice_jobs()) == queued_before  # ...and gone with it
    assert Notification.objects.filter(user=citizen).count() == 0
    assert Delivery.objects.count() == 0
    assert fcm.attempts == []
    assert citizen.device_sessions.filter(revoked_at=None).count() == 2


def test_the_notice_ignores_quiet_hours_and_preferences(fcm: FakeFcmServer) -> None:
    citizen, _ = citizen_with_devices("vi")
    actions.update_preferences(
        citizen,
        {
            "announcements": False,
            "quiet_hours_enabled": True,
            "quiet_start": dt.time(0, 0),
            "quiet_end": dt.time(23, 59, 59),
        },
    )

    open_level1_reset(citizen)
    run_worker_until_idle()
    run_worker_until_idle()

    assert [len(fcm.sent_to(t)) for t in ("tok-live-1", "tok-live-2")] == [1, 1]
