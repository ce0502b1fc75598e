"""Every migration is safe to run on the big tables while the previous release
serves (README "Deploying"): each strong lock it takes on them (SHARE and above:
writes wait behind it, and ACCESS EXCLUSIVE stops reads too) is taken with a
`lock_timeout`, no index of theirs is built or dropped without CONCURRENTLY, no
table of theirs is rewritten, and none is read whole under such a lock (a CHECK or
FOREIGN KEY constraint added without NOT VALID, SET NOT NULL: no lock_timeout bounds
the time the lock is then held). procrastinate's job and event tables are big tables
too (its migrations run through the same `migrate`).

The whole history runs, through `manage.py migrate` as the release process runs it,
on an empty database of its own (tests/backend/migration_walk.py records what each
statement did). A table counts from the migration after the one that created it.
A second walk adds migrations of each kind (tests/backend/unsafe_migrations.py) and
checks that the walk finds each unsafe one, and none of the safe ones.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
# Any statement of the SQL run (procrastinate's migrations run files of many).
INDEX_STATEMENT = re.compile(
    r"(^|;)\s*(CREATE\s+(UNIQUE\s+)?INDEX|DROP\s+INDEX)\b(?!\s+CONCURRENTLY)", re.I | re.M
)

# Plain index builds written before these rules, already applied by the deployments
# (editing them would change only fresh installs, whose tables are empty; 0012's note
# tells how to build its indexes by hand first on a big table). Nothing new goes here.
INDEX = "index built or dropped"
SCANNED = "read whole under a strong lock"
REWRITTEN = "table rewritten"
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
    # Its two columns of Django's Positive*Field (paused_working_seconds, payment_amount)
    # are added with their CHECK (... >= 0) inline: PostgreSQL reads every row to check
    # it, under the ALTER TABLE's ACCESS EXCLUSIVE. A Positive*Field added to a big table
    # now is found here: add it without the check, then the check NOT VALID, validated
    # in a later migration.
    (
        "dossiers.0002_lifecycle_agency_credentials_requests_supplements_apologies",
        "dossiers_dossier",
        SCANNED,
    ),
    # The same inline CHECK of a Positive*Field (national_level) on the sessions' table.
    ("accounts.0010_national_sign_in", "accounts_devicesession", SCANNED),
}
# procrastinate's own migrations: every one of procrastinate 3.10.0, the version the
# project has had since its first commit, ran at the first deploy, in the same migrate
# that created procrastinate_jobs, on an empty table (nor can the project edit them:
# they are the package's). The migrations a procrastinate upgrade brings are judged as
# the project's are: nothing new goes here either.
KNOWN |= {
    ("procrastinate.0007_add_queueing_lock_column", "procrastinate_jobs", INDEX),
    ("procrastinate.0008_close_fetch_job_race_condition", "procrastinate_jobs", INDEX),
    ("procrastinate.0020_add_index_on_procrastinate_jobs", "procrastinate_jobs", INDEX),
    ("procrastinate.0024_job_id_bigint", "procrastinate_events", REWRITTEN),  # job_id bigint
    ("procrastinate.0031_add_indexes_for_fetch_job", "procrastinate_jobs", INDEX),
    # status's new enum type, its CHECK, indexes built again
    ("procrastinate.0033_post_cancel_notification", "procrastinate_jobs", INDEX),
    ("procrastinate.0033_post_cancel_notification", "procrastinate_jobs", REWRITTEN),
    # worker_id's index; its foreign key, checked by reading the table, is in the same file
    ("procrastinate.0034_pre_add_heartbeat", "procrastinate_jobs", INDEX),
}


def run_walk(out: Path, name: str, *modules: str) -> dict[str, Any]:
    """The walk of every migration (and those of `modules`) on a new empty database."""
    settings = connection.settings_dict
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
            [sys.executable, "-m", "tests.backend.migration_walk", str(out), *modules],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        found: dict[str, Any] = json.loads(out.read_text())
        return found
    finally:
        with psycopg.connect(**admin) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def walk_database() -> str:
    settings = connection.settings_dict
    return f"{settings['TEST'].get('NAME') or 'test_' + settings['NAME']}_walk"


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_walk(tmp_path_factory.mktemp("walk") / "walk.json", walk_database())


@pytest.fixture(scope="module")
def unsafe_walk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_walk(
        tmp_path_factory.mktemp("walk") / "unsafe.json",
        f"{walk_database()}_unsafe",
        "tests.backend.unsafe_migrations",
    )


def problems(walk: dict[str, Any]) -> set[tuple[str, str, str]]:
    found = set()
    for lock in walk["locks"]:
        if INDEX_STATEMENT.search(lock["sql"]):
            found.add((lock["migration"], lock["table"], INDEX))
        elif lock["lock_timeout"] == "0":
            found.add((lock["migration"], lock["table"], f"{lock['mode']} with no lock_timeout"))
    rewritten = {(rewrite["migration"], rewrite["table"]) for rewrite in walk["rewrites"]}
    for migration, table in rewritten:
        found.add((migration, table, REWRITTEN))
    for scan in walk["scans"]:
        # An index build and a rewrite read the table too: judged as such (a file of
        # procrastinate's is one statement here: one with an index build is judged so).
        if not INDEX_STATEMENT.search(scan["sql"]) and (scan["migration"], scan["table"]) not in (
            rewritten
        ):
            found.add((scan["migration"], scan["table"], SCANNED))
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


def test_the_walk_finds_each_unsafe_migration_and_no_safe_one(
    walk: dict[str, Any], unsafe_walk: dict[str, Any]
) -> None:
    added = problems(unsafe_walk) - problems(walk)
    assert added == {
        ("dossiers.9001_checkwithoutnotvalid", "dossiers_dossier", SCANNED),
        ("dossiers.9002_setnotnull", "dossiers_dossier", SCANNED),
        ("dossiers.9003_foreignkeywithoutnotvalid", "dossiers_dossier", SCANNED),
        ("dossiers.9004_validatedwhereadded", "dossiers_dossier", SCANNED),
        ("procrastinate.9001_jobsindex", "procrastinate_jobs", INDEX),
        ("procrastinate.9002_jobsrewrite", "procrastinate_jobs", REWRITTEN),
        ("procrastinate.9003_jobscheck", "procrastinate_jobs", SCANNED),
        (
            "procrastinate.9004_eventsunbounded",
            "procrastinate_events",
            "ShareLock with no lock_timeout",
        ),
    }
    # The history before them is judged alike in both walks.
    assert problems(unsafe_walk) - added == problems(walk)
    # The safe ones ran, took their locks (bounded), and read nothing under them.
    ran = {lock["migration"] for lock in unsafe_walk["locks"]}
    assert {
        "dossiers.9005_checknotvalid",
        "dossiers.9007_setnotnullproven",
    } <= ran
    assert [
        scan
        for scan in unsafe_walk["scans"]
        if scan["migration"].startswith(("dossiers.9005", "dossiers.9006", "dossiers.9007"))
    ] == []
    # What the unsafe ones read under: the ALTER TABLE's own lock.
    modes = {
        scan["migration"]: scan["modes"]
        for scan in unsafe_walk["scans"]
        if scan["migration"].startswith("dossiers.900")
    }
    assert modes == {
        "dossiers.9001_checkwithoutnotvalid": ["AccessExclusiveLock"],
        "dossiers.9002_setnotnull": ["AccessExclusiveLock"],
        "dossiers.9003_foreignkeywithoutnotvalid": ["ShareRowExclusiveLock"],
        "dossiers.9004_validatedwhereadded": ["AccessExclusiveLock"],
    }
