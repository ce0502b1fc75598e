"""Fixtures of the realtime tests: events written like an action writes them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from auth.models import User
from dossiers.events import record_event
from dossiers.models import Dossier, DossierEvent
from tests.conftest import make_user, sign_in
from tests.factories import make_dossier
from tracking.tickets import issue_ticket


def add_event(
    dossier: Dossier,
    type: str = "dossier.processing_started",
    *,
    status_after: int | None = Dossier.Status.PROCESSING,
    message: str = "",
    data: dict[str, Any] | None = None,
    actor_type: str = DossierEvent.Actor.AGENCY,
) -> DossierEvent:
    """One committed event, written the way an action writes it (row lock, one transaction)."""
    with transaction.atomic():
        locked = Dossier.objects.select_for_update().get(pk=dossier.pk)
        before = locked.status
        if status_after is not None:
            locked.status = status_after
            locked.save(update_fields=["status", "updated_at"])
        return record_event(
            locked,
            type=type,
            actor_type=actor_type,
            status_before=before if status_after is not None else None,
            status_after=status_after,
            message=message,
            data=data,
        )


class OpenTransaction:
    """A transaction in another thread that writes an event and stays open until released.

    This is how two concurrent actions commit out of id order: the event
    written here takes its id first and becomes visible last.
    """

    def __init__(self, dossier: Dossier, type: str = "dossier.accepted") -> None:
        self.dossier = dossier
        self.type = type
        self.written = threading.Event()
        self.release = threading.Event()
        self.undo = False  # roll back when released
        self.event: DossierEvent | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self.event = record_event(
                    Dossier.objects.select_for_update().get(pk=self.dossier.pk),
                    type=self.type,
                    actor_type=DossierEvent.Actor.AGENCY,
                    status_after=Dossier.Status.ACCEPTED,
                )
                self.written.set()
                if not self.release.wait(timeout=30):
                    raise TimeoutError("the test never released the transaction")
                if self.undo:
                    transaction.set_rollback(True)
        except BaseException as exc:  # reported to the test through .error
            self.error = exc
            self.written.set()
        finally:
            connection.close()

    def __enter__(self) -> OpenTransaction:
        self.thread.start()
        assert self.written.wait(timeout=10)
        assert self.error is None, self.error
        return self

    def rollback(self) -> None:
        """End the transaction without its event: its id stays a gap for good."""
        self.undo = True
        self.release.set()
        self.thread.join(timeout=10)
        assert self.error is None, self.error

    def commit(self) -> DossierEvent:
        self.release.set()
        self.thread.join(timeout=10)
        assert self.error is None, self.error
        assert self.event is not None
        return self.event

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.thread.join(timeout=10)


class OtherWriter:
    """A write transaction in another thread that writes no event and stays open
    until released: what any other writer on the cluster does (its commit sends
    no hint). It holds no frame back."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.txid: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_current_xact_id()::text::bigint")
                self.txid = int(cursor.fetchone()[0])
                self.started.set()
                if not self.release.wait(timeout=60):
                    raise TimeoutError("the test never released the transaction")
        except BaseException as exc:  # reported to the test through .error
            self.error = exc
            self.started.set()
        finally:
            connection.close()

    def __enter__(self) -> OtherWriter:
        self.thread.start()
        assert self.started.wait(timeout=10)
        assert self.error is None, self.error
        return self

    def commit(self) -> None:
        self.release.set()
        self.thread.join(timeout=10)
        assert self.error is None, self.error

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.thread.join(timeout=10)


@pytest.fixture
def realtime_settings(settings: Any) -> Any:
    """Short timers so the tests do not wait; nothing else changes."""
    settings.WS_HEARTBEAT_SECONDS = 30
    settings.WS_RECHECK_SECONDS = 0.05
    settings.WS_ALLOWED_ORIGINS = ["https://app.dichvucong.example"]
    return settings


class Citizen:
    """A signed-in user with a dossier, and a way to get socket tickets."""

    def __init__(self, **user_fields: Any) -> None:
        self.user: User = make_user(**user_fields)
        self.session, self.tokens = sign_in(self.user)
        self.dossier = make_dossier(self.user, status=Dossier.Status.NEW)

    def ticket(self, dossier: Dossier | None = None) -> str:
        return issue_ticket(self.user.pk, self.session.pk, dossier.pk if dossier else None)


@pytest.fixture
def citizen_factory(transactional_db: None) -> Iterator[Callable[..., Citizen]]:
    return Citizen
