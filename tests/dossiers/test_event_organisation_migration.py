"""dossiers 0014: the backfill of the events' copy of their dossier's organisation
(run in batches on a live log), through the append-only trigger's one exception."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.db import connection
from django.db.models import F, Q

from bench import scale
from dossiers.models import DossierEvent
from tests.dossiers.conftest import updates_into

pytestmark = pytest.mark.django_db

migration = importlib.import_module("dossiers.migrations.0014_event_organisation_backfill")


def test_the_backfill_fills_every_events_organisation_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scale.seed(0.001, vacuum=False)
    with connection.cursor() as cursor:
        # Events as written before the column existed (below the triggers).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE tracking_dossierevent SET organisation_id = NULL")
        cursor.execute("SET LOCAL session_replication_role = origin")
    of_organisations = DossierEvent.objects.filter(dossier__organisation__isnull=False)
    assert of_organisations.count() > 100
    assert not DossierEvent.objects.filter(organisation__isnull=False).exists()
    monkeypatch.setattr(migration, "BATCH", 997)  # many batches, one not full

    batches: list[Any] = []
    with updates_into(batches), connection.schema_editor() as editor:
        migration.fill(None, editor)

    assert len(batches) > 5
    wrong = DossierEvent.objects.exclude(
        Q(organisation=F("dossier__organisation"))
        | Q(organisation__isnull=True, dossier__organisation__isnull=True)
    )
    assert not wrong.exists()
    assert DossierEvent.objects.filter(organisation__isnull=False).count() == (
        of_organisations.count()
    )
