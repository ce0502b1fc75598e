"""Runs `manage.py migrate` on an empty PostgreSQL database and records what every
statement of every migration did to the big tables: the strong locks it took (SHARE
and above: every write of the table waits while such a lock is waited for or held),
the `lock_timeout` in force, the concurrent index statements, the tables a migration
rewrote (a new file), and the tables a statement scanned while its transaction held a
strong lock on them (a CHECK or FOREIGN KEY constraint added without NOT VALID, a SET
NOT NULL, a NOT VALID constraint validated in the transaction that added it: the file
stays, but every row is read under the lock, which no lock_timeout bounds). A scan is
PostgreSQL's own count of the table's sequential scans in this transaction
(`pg_stat_xact_user_tables`), read before and after each statement: it counts on an
empty table too, and it is not counted where PostgreSQL skips the scan (SET NOT NULL
proven by a validated CHECK). Run by tests/backend/test_migration_locks.py in a
process of its own, with DATABASE_URL naming the empty database:

    python -m tests.backend.migration_walk OUT.json [MODULE ...]

Each MODULE (tests/backend/unsafe_migrations.py) adds migrations to the history, to
show the walk what it must find: its `MIGRATIONS` maps an app label to the migrations
that follow that app's last one, in order.

An autocommit statement (in a non-atomic migration) runs inside BEGIN ... COMMIT
here, so that its locks can be seen before they go, except the ones that cannot run
in a transaction block (CONCURRENTLY): those are recorded as they are.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

BIG_TABLES = [
    "dossiers_dossier",
    "tracking_dossierevent",
    "dossiers_attachment",
    "notifications_delivery",
    "payments_payment",
    # a row per citizen (500 k in a province's first year), per signed-in device, per
    # notification in an inbox (one per event per member who hears it)
    "accounts_user",
    "accounts_devicesession",
    "notifications_notification",
    # procrastinate's (its own migrations run through the same `migrate`): a row per job
    # deferred (one per push, SMS, booking sent, event subscriber...), kept until the
    # purge, and several events per job.
    "procrastinate_jobs",
    "procrastinate_events",
]
STRONG_MODES = ["ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"]
NO_TRANSACTION_BLOCK = re.compile(r"\bCONCURRENTLY\b|^\s*(VACUUM|CREATE DATABASE)", re.I)

LOCKS_SQL = """
SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND c.relname = ANY(%s) AND l.mode = ANY(%s)
"""
FILES_SQL = "SELECT relname, relfilenode FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'"
SQL_KEPT = 2000  # characters of a statement recorded (procrastinate runs whole files)
# Sequential scans of each table in this transaction so far (not flushed inside one).
SCANS_SQL = "SELECT relname, seq_scan FROM pg_stat_xact_user_tables WHERE relname = ANY(%s)"


def walk() -> dict[str, list[dict[str, Any]]]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.management.commands import migrate as django_migrate
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    _add_migrations(MigrationLoader, sys.argv[2:])
    found: dict[str, list[dict[str, Any]]] = {
        "locks": [],
        "concurrent": [],
        "rewrites": [],
        "scans": [],
    }
    current: dict[str, Any] = {"migration": None, "files": {}, "seen": set()}

    def raw_rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with connection.connection.cursor() as cursor:  # not through the wrapper
            cursor.execute(sql, params)
            return cursor.fetchall()

    def files() -> dict[str, int]:
        return dict(raw_rows(FILES_SQL, [BIG_TABLES]))

    def scans() -> dict[str, int]:
        return dict(raw_rows(SCANS_SQL, [BIG_TABLES]))

    def after_statement(
        sql: str, timeout: str, seen: set[tuple[str, str]], before: dict[str, int]
    ) -> None:
        held = raw_rows(LOCKS_SQL, [BIG_TABLES, STRONG_MODES])
        after = scans()
        scanned = {
            table
            for table, count in after.items()
            if count > before.get(table, 0) and table in current["files"]
        }
        for table in sorted(scanned):
            modes = sorted(mode for locked, mode in held if locked == table)
            if modes:
                found["scans"].append(
                    {
                        "migration": current["migration"],
                        "table": table,
                        "modes": modes,
                        "sql": sql[:SQL_KEPT],
                    }
                )
        for table, mode in held:
            if (table, mode) in seen:
                continue
            seen.add((table, mode))
            if table in current["files"]:  # created by this very migration: nobody uses it yet
                found["locks"].append(
                    {
                        "migration": current["migration"],
                        "table": table,
                        "mode": mode,
                        "lock_timeout": timeout,
                        "sql": sql[:SQL_KEPT],
                    }
                )

    def observe(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        if current["migration"] is None:
            return execute(sql, params, many, context)
        text = str(sql)
        ((timeout,),) = raw_rows("SHOW lock_timeout")
        if connection.in_atomic_block:
            before = scans()
            result = execute(sql, params, many, context)
            after_statement(text, timeout, current["seen"], before)
            return result
        if NO_TRANSACTION_BLOCK.search(text):
            found["concurrent"].append(
                {"migration": current["migration"], "lock_timeout": timeout, "sql": text[:SQL_KEPT]}
            )
            return execute(sql, params, many, context)
        connection.connection.execute("BEGIN")
        try:
            before = scans()
            result = execute(sql, params, many, context)
            after_statement(text, timeout, set(), before)
        except BaseException:
            connection.connection.execute("ROLLBACK")
            raise
        connection.connection.execute("COMMIT")
        return result

    original = django_migrate.Command.migration_progress_callback

    def progress(self: Any, action: str, migration: Any = None, fake: bool = False) -> None:
        if action == "apply_start":
            current["migration"] = f"{migration.app_label}.{migration.name}"
            current["files"] = files()
            current["seen"] = set()
        elif action == "apply_success" and current["migration"]:
            after = files()
            for table, before in current["files"].items():
                if after.get(table) not in (None, before):
                    found["rewrites"].append({"migration": current["migration"], "table": table})
            current["migration"] = None
        original(self, action, migration, fake)

    django_migrate.Command.migration_progress_callback = progress  # type: ignore[method-assign]
    connection.ensure_connection()
    with connection.execute_wrapper(observe):
        call_command("migrate", interactive=False, verbosity=0)
    return found


def _add_migrations(loader: Any, modules: list[str]) -> None:
    """The migrations of `modules` in the history Django loads from disk, each after the
    last migration of its app (the one before it in its module's list)."""
    import importlib

    extra: dict[str, list[type[Any]]] = {}
    for module in modules:
        for app_label, classes in importlib.import_module(module).MIGRATIONS.items():
            extra.setdefault(app_label, []).extend(classes)
    if not extra:
        return
    load_disk = loader.load_disk

    def with_extra(self: Any) -> None:
        load_disk(self)
        for app_label, classes in extra.items():
            previous = max(name for app, name in self.disk_migrations if app == app_label)
            for number, migration_class in enumerate(classes, start=9001):
                name = f"{number}_{migration_class.__name__.lower()}"
                migration = migration_class(name, app_label)
                migration.dependencies = [*migration.dependencies, (app_label, previous)]
                self.disk_migrations[app_label, name] = migration
                previous = name

    loader.load_disk = with_extra


if __name__ == "__main__":
    result = walk()
    with open(sys.argv[1], "w") as out:
        json.dump(result, out, indent=1)
