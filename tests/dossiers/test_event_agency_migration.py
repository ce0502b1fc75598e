"""dossiers 0028: the backfill of the payment requests' agency (run in batches on a
live log, walked on the requests' own index), through the append-only trigger's
exception of 0027; and 0027's insert trigger, for rows the previous release writes."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from bench import scale
from dossiers.models import DossierEvent
from tests.dossiers.conftest import updates_into

pytestmark = pytest.mark.django_db

migration = importlib.import_module(
    "dossiers.migrations.0028_event_agency_payment_requests_backfill"
)
REQUESTED = "dossier.payment_requested"


def written_before_the_column() -> None:
    with connection.cursor() as cursor:
        # Events as written before the column existed (below the triggers).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE tracking_dossierevent SET agency_id = NULL")
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_the_backfill_fills_the_payment_requests_agency_in_batches_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scale.seed(0.001, vacuum=False)
    written_before_the_column()
    requests = DossierEvent.objects.filter(type=REQUESTED)
    assert requests.count() > 20
    monkeypatch.setattr(migration, "BATCH", 7)  # many batches, the last one not full

    batches: list[Any] = []
    with updates_into(batches), connection.schema_editor() as editor:
        migration.fill(None, editor)

    assert len(batches) >= requests.count() // 7
    assert batches[-1][1] is None  # the last batch: every request from its moment on
    assert requests.filter(agency=F("dossier__agency")).count() == requests.count()
    # The other events keep NULL: nothing reads their agency.
    assert not DossierEvent.objects.exclude(type=REQUESTED).filter(agency__isnull=False).exists()
    # Run again (interrupted, resumed): nothing left to fill.
    batches.clear()
    with updates_into(batches), connection.schema_editor() as editor:
        migration.fill(None, editor)
    assert requests.filter(agency=F("dossier__agency")).count() == requests.count()


def test_the_log_stays_append_only_but_for_filling_the_dossiers_own_agency() -> None:
    scale.seed(0.001, vacuum=False)
    written_before_the_column()
    event = DossierEvent.objects.filter(type=REQUESTED).select_related("dossier").first()
    assert event is not None
    other = 1 if event.dossier.agency_id != 1 else 2
    for change in (
        {"agency_id": other},  # another agency than the dossier's
        {"agency_id": event.dossier.agency_id, "message": "x"},  # more than the agency
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            DossierEvent.objects.filter(pk=event.pk).update(**change)
    assert DossierEvent.objects.get(pk=event.pk).agency_id is None
    DossierEvent.objects.filter(pk=event.pk).update(agency_id=event.dossier.agency_id)
    assert DossierEvent.objects.get(pk=event.pk).agency_id == event.dossier.agency_id
    # Filled once, it is final.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        DossierEvent.objects.filter(pk=event.pk).update(agency_id=other)


def test_an_event_inserted_without_its_agency_gets_its_dossiers() -> None:
    # The previous release, during a rolling deploy, writes events without the column.
    scale.seed(0.001, vacuum=False)
    event = DossierEvent.objects.filter(type=REQUESTED).select_related("dossier").first()
    assert event is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracking_dossierevent (seq, type, actor_type, actor_label, message,"
            " data, created_at, dossier_id) VALUES (%s, %s, 'agency', '', '', '{}', now(), %s)"
            " RETURNING id",
            [10_000, REQUESTED, event.dossier_id],
        )
        (new,) = cursor.fetchone()
    assert DossierEvent.objects.get(pk=new).agency_id == event.dossier.agency_id
