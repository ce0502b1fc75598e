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


def test_no_statement_names_txid_and_nothing_writes_it(db: None) -> None:
    # Release 1 of the column's removal (migration 0021): no INSERT or read of this
    # release names it, so the next release can drop it while this one serves.
    from django.test.utils import CaptureQueriesContext

    from tracking.timeline import build_timeline

    dossier = make_dossier(status=Dossier.Status.NEW)
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        event = record_event(
            dossier, type=EventType.DOSSIER_SUBMITTED, actor_type="citizen", status_after=1
        )
        list(DossierEvent.objects.filter(dossier=dossier))
        build_timeline(dossier)
    assert any("INSERT INTO" in q["sql"] for q in captured.captured_queries)
    assert not [q["sql"] for q in captured.captured_queries if "txid" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid FROM tracking_dossierevent WHERE id = %s", [event.pk])
        assert cursor.fetchone() == (None,)


def test_the_previous_release_still_inserts_and_reads_txid(db: None) -> None:
    # While this release rolls out, the previous one serves: its model inserts
    # DEFAULT into txid and reads it back. It gets NULL, which it never used.
    dossier = make_dossier(status=Dossier.Status.NEW)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracking_dossierevent (seq, type, actor_type, actor_label, message,"
            " data, created_at, dossier_id, txid) VALUES (1, 'dossier.submitted', 'citizen',"
            " '', '', '{}', now(), %s, DEFAULT) RETURNING id, txid",
            [dossier.pk],
        )
        event_id, txid = cursor.fetchone()
    assert txid is None
    assert DossierEvent.objects.get(pk=event_id).seq == 1


def test_the_next_release_may_drop_txid(db: None) -> None:
    # Release 2 drops the column (README "Deploying"): events are still written,
    # by the trigger too, and read. (The test's transaction undoes the drop.)
    dossier = make_dossier(status=Dossier.Status.NEW)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tracking_dossierevent DROP COLUMN txid")
    with transaction.atomic():
        event = record_event(
            dossier, type=EventType.DOSSIER_SUBMITTED, actor_type="citizen", status_after=1
        )
    assert list(DossierEvent.objects.filter(dossier=dossier).values_list("id", "seq")) == [
        (event.pk, 1)
    ]


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
