"""Runs `manage.py migrate` on an empty PostgreSQL database and records what every
statement of every migration did to the big tables: the strong locks it took (SHARE
and above: every write of the table waits while such a lock is waited for or held),
the `lock_timeout` in force, the concurrent index statements, and the tables a
migration rewrote (a new file). Run by tests/backend/test_migration_locks.py in a
process of its own, with DATABASE_URL naming the empty database:

    python -m tests.backend.migration_walk OUT.json

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
]
STRONG_MODES = ["ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"]
NO_TRANSACTION_BLOCK = re.compile(r"\bCONCURRENTLY\b|^\s*(VACUUM|CREATE DATABASE)", re.I)

LOCKS_SQL = """
SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND c.relname = ANY(%s) AND l.mode = ANY(%s)
"""
FILES_SQL = "SELECT relname, relfilenode FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'"


def walk() -> dict[str, list[dict[str, Any]]]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.management.commands import migrate as django_migrate
    from django.db import connection

    found: dict[str, list[dict[str, Any]]] = {"locks": [], "concurrent": [], "rewrites": []}
    current: dict[str, Any] = {"migration": None, "files": {}, "seen": set()}

    def raw_rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with connection.connection.cursor() as cursor:  # not through the wrapper
            cursor.execute(sql, params)
            return cursor.fetchall()

    def files() -> dict[str, int]:
        return dict(raw_rows(FILES_SQL, [BIG_TABLES]))

    def new_locks(sql: str, timeout: str, seen: set[tuple[str, str]]) -> None:
        for table, mode in raw_rows(LOCKS_SQL, [BIG_TABLES, STRONG_MODES]):
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
                        "sql": sql[:300],
                    }
                )

    def observe(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        if current["migration"] is None:
            return execute(sql, params, many, context)
        text = str(sql)
        ((timeout,),) = raw_rows("SHOW lock_timeout")
        if connection.in_atomic_block:
            result = execute(sql, params, many, context)
            new_locks(text, timeout, current["seen"])
            return result
        if NO_TRANSACTION_BLOCK.search(text):
            found["concurrent"].append(
                {"migration": current["migration"], "lock_timeout": timeout, "sql": text[:300]}
            )
            return execute(sql, params, many, context)
        connection.connection.execute("BEGIN")
        try:
            result = execute(sql, params, many, context)
            new_locks(text, timeout, set())
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


if __name__ == "__main__":
    result = walk()
    with open(sys.argv[1], "w") as out:
        json.dump(result, out, indent=1)
