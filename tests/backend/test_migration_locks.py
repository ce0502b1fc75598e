"""Every migration is safe to run on the big tables while the previous release
serves (README "Deploying"): each strong lock it takes on them (SHARE and above:
writes wait behind it, and ACCESS EXCLUSIVE stops reads too) is taken with a
`lock_timeout`, no index of theirs is built or dropped without CONCURRENTLY, and no
table of theirs is rewritten.

The whole history runs, through `manage.py migrate` as the release process runs it,
on an empty database of its own (tests/backend/migration_walk.py records what each
statement did). A table counts from the migration after the one that created it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
INDEX_STATEMENT = re.compile(r"^\s*(CREATE\s+(UNIQUE\s+)?INDEX|DROP\s+INDEX)\b", re.I)

# Plain index builds written before these rules, already applied by the deployments
# (editing them would change only fresh installs, whose tables are empty; 0012's note
# tells how to build its indexes by hand first on a big table). Nothing new goes here.
INDEX = "index built or dropped"
KNOWN = {
    # the dossier's foreign keys' indexes (agency credentials, supplements, apologies)
    (
        "dossiers.0002_lifecycle_agency_credentials_requests_supplements_apologies",
        "dossiers_dossier",
        INDEX,
    ),
    ("tracking.0002_event_txid", "tracking_dossierevent", INDEX),  # (txid, id), gone since 0019
    ("dossiers.0012_scale_indexes", "dossiers_dossier", INDEX),
    ("dossiers.0012_scale_indexes", "tracking_dossierevent", INDEX),
    ("payments.0002_payment_refunded_by", "payments_payment", INDEX),  # its foreign key's
}


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = connection.settings_dict
    name = f"{settings['TEST'].get('NAME') or 'test_' + settings['NAME']}_walk"
    admin = {
        "host": settings["HOST"] or "127.0.0.1",
        "port": settings["PORT"] or 5432,
        "user": settings["USER"] or "postgres",
        "password": settings["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**admin) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{name}"')
        server.execute(f'CREATE DATABASE "{name}"')
    out = tmp_path_factory.mktemp("walk") / "walk.json"
    auth = f"{admin['user']}:{admin['password']}" if admin["password"] else admin["user"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{auth}@{admin['host']}:{admin['port']}/{name}",
        "JOBS_INLINE": "0",
        "MIGRATION_LOCK_TIMEOUT_MS": "2000",  # the default, shown as 2s below
    }
    env.pop("TEST_DATABASE_NAME", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.backend.migration_walk", str(out)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield json.loads(out.read_text())
    finally:
        with psycopg.connect(**admin) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def problems(walk: dict[str, Any]) -> set[tuple[str, str, str]]:
    found = set()
    for lock in walk["locks"]:
        if INDEX_STATEMENT.match(lock["sql"]):
            found.add((lock["migration"], lock["table"], INDEX))
        elif lock["lock_timeout"] == "0":
            found.add((lock["migration"], lock["table"], f"{lock['mode']} with no lock_timeout"))
    for rewrite in walk["rewrites"]:
        found.add((rewrite["migration"], rewrite["table"], "table rewritten"))
    return found


def test_no_migration_blocks_the_big_tables_unbounded(walk: dict[str, Any]) -> None:
    assert problems(walk) - KNOWN == set()
    # Nothing stale in the exceptions either.
    assert problems(walk) >= KNOWN


def test_the_walk_sees_the_locks_it_judges(walk: dict[str, Any]) -> None:
    # The walk is no empty pass: the log's trigger (0018) and the column change of
    # 0021 take ACCESS EXCLUSIVE on the log, bounded by the release's setting.
    taken = {
        (lock["migration"], lock["table"], lock["mode"], lock["lock_timeout"])
        for lock in walk["locks"]
    }
    for migration in (
        "dossiers.0018_event_id_taken_by_a_known_writer",
        "dossiers.0021_event_txid_no_longer_written",
    ):
        assert (migration, "tracking_dossierevent", "AccessExclusiveLock", "2s") in taken
    # Concurrent index statements wait for older transactions with no timeout (one
    # would leave an INVALID index behind): they block no one meanwhile.
    concurrent = [s for s in walk["concurrent"] if s["migration"].startswith("dossiers.0019")]
    assert len(concurrent) == 5
    assert {s["lock_timeout"] for s in concurrent} == {"0"}
