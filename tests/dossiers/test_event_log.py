"""The dossier event log is append-only, enforced by the database itself, and its
types are the one enumeration `EventType`."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from dossiers.events import EventType, record_event
from dossiers.models import Dossier, DossierEvent
from tests.factories import make_dossier


@pytest.fixture
def event(db: None) -> DossierEvent:
    dossier = make_dossier(status=Dossier.Status.NEW)
    with transaction.atomic():
        return record_event(
            dossier,
            type=EventType.DOSSIER_SUBMITTED,
            actor_type="citizen",
            status_before=0,
            status_after=1,
        )


def unchanged(event: DossierEvent) -> None:
    stored = DossierEvent.objects.get(pk=event.pk)
    assert (stored.type, stored.message, stored.seq) == ("dossier.submitted", "", 1)


def test_orm_save_of_an_existing_event_fails(event: DossierEvent) -> None:
    event.message = "rewritten"
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        event.save()
    unchanged(event)


def test_queryset_update_fails(event: DossierEvent) -> None:
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        DossierEvent.objects.filter(pk=event.pk).update(type="dossier.accepted")
    unchanged(event)


def test_orm_delete_fails(event: DossierEvent) -> None:
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        DossierEvent.objects.filter(pk=event.pk).delete()
    unchanged(event)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE tracking_dossierevent SET message = 'x' WHERE id = %s",
        "DELETE FROM tracking_dossierevent WHERE id = %s",
    ],
)
def test_raw_sql_update_and_delete_fail(event: DossierEvent, statement: str) -> None:
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [event.pk])
    unchanged(event)


def test_inserting_more_events_still_works(event: DossierEvent) -> None:
    with transaction.atomic():
        second = record_event(event.dossier, type="dossier.accepted", actor_type="agency")
    assert second.seq == 2
    assert DossierEvent.objects.count() == 2


def test_the_log_keeps_the_table_it_had_under_tracking() -> None:
    # The raw SQL above and the trigger of tracking/migrations/0002 name this table.
    assert DossierEvent._meta.db_table == "tracking_dossierevent"
    assert DossierEvent._meta.app_label == "dossiers"


def test_the_type_field_offers_exactly_the_event_types() -> None:
    assert DossierEvent._meta.get_field("type").choices == EventType.choices


def test_an_unknown_type_is_refused_before_anything_is_written(event: DossierEvent) -> None:
    with pytest.raises(ValueError, match=r"dossier\.teleported"), transaction.atomic():
        record_event(event.dossier, type="dossier.teleported", actor_type="agency")
    assert list(DossierEvent.objects.values_list("type", flat=True)) == ["dossier.submitted"]


def test_an_event_carries_the_id_of_the_transaction_that_inserted_it(db: None) -> None:
    # The INSERT computes txid (the log's trigger) and returns it with the id, with
    # no statement of its own before it.
    from django.test.utils import CaptureQueriesContext

    dossier = make_dossier(status=Dossier.Status.NEW)
    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            event = record_event(
                dossier, type=EventType.DOSSIER_SUBMITTED, actor_type="citizen", status_after=1
            )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
            current = int(cursor.fetchone()[0])

    assert event.txid == current > 0
    assert DossierEvent.objects.get(pk=event.pk).txid == current
    inserts = [q["sql"] for q in captured.captured_queries if "INSERT INTO" in q["sql"]]
    assert any('"tracking_dossierevent"' in sql and "RETURNING" in sql for sql in inserts)
    assert not any("pg_current_xact_id" in q["sql"] for q in captured.captured_queries)


WRITER_LOCK = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 21586"
    " AND objid = 1 AND objsubid = 2 AND mode = 'ShareLock' AND pid = pg_backend_pid()"
)


def test_an_event_writer_holds_the_logs_lock_from_its_id_to_its_end(transactional_db: None) -> None:
    # tracking/stream.py settles an id nobody can see by the holders of this lock:
    # whoever took an id holds it until its transaction ends (dossiers migration 0018).
    dossier = make_dossier(status=Dossier.Status.NEW)
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM tracking_dossierevent_log_seq")
        before = int(cursor.fetchone()[0])
        with transaction.atomic():
            cursor.execute(WRITER_LOCK)
            assert cursor.fetchone()[0] == 0
            event = record_event(dossier, type=EventType.DOSSIER_SUBMITTED, actor_type="citizen")
            cursor.execute(WRITER_LOCK)
            assert cursor.fetchone()[0] == 1
        cursor.execute(WRITER_LOCK)
        assert cursor.fetchone()[0] == 0
    # The id came from the log's own sequence.
    assert event.pk > before
