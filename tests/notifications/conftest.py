"""Fixtures of the notifications tests: a loopback fake FCM and helpers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from auth.models import DeviceSession, User
from dossiers.events import record_event
from dossiers.models import Dossier, DossierEvent
from fakes.fcm import FakeFcmServer
from notifications import actions
from notifications.models import Device, Notification
from tests.conftest import run_jobs_until_idle, sign_in


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # These tests make many users; the production hasher costs most of a second each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fake_fcm() -> Iterator[FakeFcmServer]:
    with FakeFcmServer(project_id="citizen-test") as server:
        yield server


@pytest.fixture
def fcm(
    settings: Any, fake_fcm: FakeFcmServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> FakeFcmServer:
    """PUSH_BACKEND=fcm: the real firebase-admin code, talking to the fake over HTTP.

    Only URLs change: FCM's (FCM_API_BASE), the OAuth2 token endpoint (the
    credential's token_uri) and google-auth's access-boundary lookup, whose host
    is hard-coded to Google's.
    """
    monkeypatch.setattr(
        "google.auth._regional_access_boundary_utils.get_service_account_rab_endpoint",
        fake_fcm.rab_endpoint,
    )
    settings.PUSH_BACKEND = "fcm"
    settings.FCM_CREDENTIALS_FILE = str(fake_fcm.write_credentials(tmp_path / "sa.json"))
    settings.FCM_PROJECT_ID = ""
    settings.FCM_API_BASE = fake_fcm.base_url
    return fake_fcm


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("notifications.delivery.jitter_fraction", lambda: 0.0)


def register(
    user: User,
    token: str,
    *,
    platform: str = "android",
    session: DeviceSession | None = None,
    **extra: Any,
) -> Device:
    if session is None:
        session, _ = sign_in(user)
    device, _ = actions.register_device(user, session, token=token, platform=platform, **extra)
    return device


def emit(dossier: Dossier, type: str, **extra: Any) -> DossierEvent:
    """A dossier event as an action writes it: in a transaction, jobs deferred inside."""
    extra.setdefault("actor_type", DossierEvent.Actor.AGENCY)
    with transaction.atomic():
        return record_event(dossier, type=type, **extra)


def jobs(task_name: str) -> list[dict[str, Any]]:
    """Queued procrastinate jobs of a task: args, status, scheduled_at."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT args, status, scheduled_at FROM procrastinate_jobs WHERE task_name = %s "
            "ORDER BY id",
            [task_name],
        )
        return [
            {
                "args": json.loads(args) if isinstance(args, str) else args,
                "status": status,
                "scheduled_at": scheduled_at,
            }
            for args, status, scheduled_at in cursor.fetchall()
        ]


def todo_jobs(task_name: str) -> list[dict[str, Any]]:
    return [job for job in jobs(task_name) if job["status"] == "todo"]


def run_worker_until_idle() -> None:
    """Run the notifications jobs until none is due (jobs deferred by jobs included)."""
    run_jobs_until_idle(["notifications"])


def at_local(hour: int, minute: int = 0, day: int = 10) -> dt.datetime:
    """A moment in Asia/Ho_Chi_Minh business time."""
    import zoneinfo

    return dt.datetime(2026, 3, day, hour, minute, tzinfo=zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh"))


class Clock:
    """A settable `timezone.now()` for exact timing assertions."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now

    def set(self, moment: dt.datetime) -> None:
        self.now = moment


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from django.utils import timezone

    frozen = Clock(timezone.now().replace(microsecond=0))
    monkeypatch.setattr("django.utils.timezone.now", frozen)
    return frozen


def notify(
    user: User, type: str = "dossier.completed", dossier: Dossier | None = None, **extra: Any
) -> Notification:
    """Emit an event on a dossier of `user`, fan it out, return `user`'s inbox entry."""
    from tests.factories import make_dossier

    dossier = dossier or make_dossier(user, status=Dossier.Status.PROCESSING)
    event = emit(dossier, type, **extra)
    actions.notify_event(event.pk)
    return Notification.objects.get(event=event, user=user)


def send_all(notification: Notification) -> int:
    from notifications.delivery import send_pushes

    return send_pushes(list(notification.deliveries.values_list("pk", flat=True)))
