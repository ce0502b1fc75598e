"""The event log moved from the tracking app to dossiers without touching its table.

A database at the graph before the move (dossiers 0003, tracking 0003,
notifications 0002) holds events, written through the historical
`tracking.DossierEvent`, and a notification pointing at one. Migrating it forward
keeps every row and the foreign key, and the append-only trigger still refuses
UPDATE and DELETE. (A fresh database runs the same migrations for every other
test: tests/dossiers/test_event_log.py checks the trigger there.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from dossiers.events import EventType, record_event
from dossiers.models import Dossier, DossierEvent
from notifications.models import Notification
from tests.factories import make_dossier

BEFORE_THE_MOVE = [
    ("dossiers", "0003_procedure_version"),
    ("tracking", "0003_merge_0002_event_log_append_only_0002_event_txid"),
    ("notifications", "0002_delivery_claim_lease"),
]
THE_MOVE = {
    ("dossiers", "0005_dossierevent_moved_from_tracking"),
    ("notifications", "0003_event_fk_to_dossiers_dossierevent"),
    ("tracking", "0004_dossierevent_moved_to_dossiers"),
}


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def database_before_the_move(
    transactional_db: None,
) -> Iterator[tuple[MigrationExecutor, Dossier, int]]:
    # The dossier is made with today's models before going back: later migrations
    # of other apps' features change its tables, and rows outlive a migration.
    dossier = make_dossier(status=Dossier.Status.ACCEPTED)
    with connection.cursor() as cursor:  # an id handed out, as by an insert rolled back
        cursor.execute("SELECT nextval('tracking_dossierevent_log_seq')")
        handed_out = int(cursor.fetchone()[0])
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_MOVE)
    executor.loader.build_graph()
    try:
        yield executor, dossier, handed_out
    finally:
        # Whatever happened, leave the schema where every other test expects it.
        migrate_to_latest()


def test_migrating_forward_keeps_rows_foreign_keys_and_the_trigger(
    database_before_the_move: tuple[MigrationExecutor, Dossier, int],
) -> None:
    executor, dossier, handed_out = database_before_the_move
    assert THE_MOVE.isdisjoint(executor.loader.applied_migrations)
    old = executor.loader.project_state(BEFORE_THE_MOVE).apps
    OldEvent = old.get_model("tracking", "DossierEvent")  # noqa: N806
    OldNotification = old.get_model("notifications", "Notification")  # noqa: N806
    with transaction.atomic():
        submitted = OldEvent.objects.create(
            dossier_id=dossier.pk,
            seq=1,
            type="dossier.submitted",
            status_before=0,
            status_after=1,
            actor_type="citizen",
            actor_user_id=dossier.applicant_id,
            actor_label="Nguyễn Văn A",
            data={"channel": "online"},
            txid=41,
        )
        accepted = OldEvent.objects.create(
            dossier_id=dossier.pk,
            seq=2,
            type="dossier.accepted",
            status_before=1,
            status_after=2,
            actor_type="agency",
            message="Receipt 01 issued.",
            txid=42,
        )
        OldNotification.objects.create(
            user_id=dossier.applicant_id,
            event_id=accepted.pk,
            dossier_id=dossier.pk,
            type="dossier.accepted",
            category="status_changes",
            title="Dossier accepted",
            body="Accepted.",
        )
    columns = ("id", "dossier_id", "seq", "type", "status_before", "status_after")
    # (not txid: nothing reads it since dossiers 0021, and the next release drops it)
    columns += ("actor_type", "actor_user_id", "actor_label", "message", "data")
    before = list(OldEvent.objects.order_by("id").values_list(*columns))
    times = list(OldEvent.objects.order_by("id").values_list("created_at", flat=True))

    migrate_to_latest()

    assert list(DossierEvent.objects.order_by("id").values_list(*columns)) == before
    assert list(DossierEvent.objects.order_by("id").values_list("created_at", flat=True)) == times
    assert [e.pk for e in dossier.events.all()] == [submitted.pk, accepted.pk]
    notification = Notification.objects.get()
    assert isinstance(notification.event, DossierEvent)
    assert (notification.event.pk, notification.event.type) == (accepted.pk, "dossier.accepted")
    for statement in (
        "UPDATE tracking_dossierevent SET message = 'x' WHERE id = %s",
        "DELETE FROM tracking_dossierevent WHERE id = %s",
    ):
        with (
            pytest.raises(IntegrityError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [submitted.pk])
    with transaction.atomic():
        locked = Dossier.objects.select_for_update().get(pk=dossier.pk)
        started = record_event(
            locked, type=EventType.DOSSIER_PROCESSING_STARTED, actor_type="agency"
        )
    assert (started.seq, started.type) == (3, "dossier.processing_started")
    # No id is handed out twice, back and forth across the log's own sequence
    # (migration 0018): the stream's cursors are ids.
    assert handed_out < submitted.pk < accepted.pk < started.pk
    assert DossierEvent.objects.get(pk=submitted.pk).message == ""


def _dossier_indexes() -> list[list[str]]:
    """The column lists of the log's indexes (the unique constraint's too) that lead
    with the dossier."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, DossierEvent._meta.db_table)
    return sorted(
        info["columns"]
        for info in found.values()
        if (info["index"] or info["unique"]) and info["columns"][:1] == ["dossier_id"]
    )


@pytest.mark.django_db
def test_the_log_has_no_index_on_the_dossier_alone() -> None:
    # Every read by dossier has the two composite indexes; a third one only cost
    # each event's insert. (The partial index of the moves that ended a payment
    # request, dossiers 0030, holds those alone: one event in a hundred is written to it.)
    assert _dossier_indexes() == [
        ["dossier_id", "id"],
        ["dossier_id", "seq"],
        ["dossier_id", "seq", "type"],
    ]


def test_migration_0020_drops_the_dossier_index_and_going_back_builds_it(
    transactional_db: None,
) -> None:
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("dossiers", "0019_event_log_order_indexes")])
        assert _dossier_indexes() == [["dossier_id"], ["dossier_id", "id"], ["dossier_id", "seq"]]
        executor.loader.build_graph()
        executor.migrate([("dossiers", "0020_event_dossier_index_dropped")])
        assert _dossier_indexes() == [["dossier_id", "id"], ["dossier_id", "seq"]]
    finally:
        executor.loader.build_graph()
        migrate_to_latest()
