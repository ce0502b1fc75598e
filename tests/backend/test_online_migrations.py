"""A concurrent index migration that stopped half-way runs again to the end
(backend/online_migrations.py, used by dossiers 0015 and 0019).

Under the bounded lock wait of `manage.py migrate` a non-atomic migration can stop
between its operations (and a concurrent build that fails leaves an INVALID index):
migrate is then run again. Dossiers 0019 is taken back, and the database is left
as an interrupted 0019 leaves it: its first index built, its second one INVALID
(a build that failed), its first drop done.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

HALF_DONE = [
    "CREATE INDEX dossier_event_dossier_log ON tracking_dossierevent (dossier_id, id)",
    "CREATE INDEX dossier_event_org_log ON tracking_dossierevent (organisation_id, id)"
    " WHERE organisation_id IS NOT NULL",
    # What a failed CREATE INDEX CONCURRENTLY leaves: the index, marked not valid.
    "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'dossier_event_org_log'::regclass",
    "DROP INDEX dossier_event_log_order",
]
INDEXES = """
SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'tracking_dossierevent'::regclass AND c.relname LIKE 'dossier_event_%%'
ORDER BY c.relname
"""


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def before_0019(transactional_db: None) -> Iterator[None]:
    MigrationExecutor(connection).migrate([("dossiers", "0018_event_id_taken_by_a_known_writer")])
    try:
        yield
    finally:
        migrate_to_latest()


def test_an_interrupted_0019_runs_again_to_the_end(before_0019: None) -> None:
    with connection.cursor() as cursor:
        for statement in HALF_DONE:
            cursor.execute(statement)

    executor = MigrationExecutor(connection)
    executor.migrate([("dossiers", "0019_event_log_order_indexes")])

    with connection.cursor() as cursor:
        cursor.execute(INDEXES)
        assert cursor.fetchall() == [
            ("dossier_event_dossier_log", True),
            ("dossier_event_org_log", True),  # the INVALID one dropped and built again
            ("dossier_event_unique_seq", True),
        ]
