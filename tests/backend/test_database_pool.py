"""DATABASE_POOL: a psycopg connection pool instead of one connection per request."""

from __future__ import annotations

from tests.backend.test_settings import run_manage

SHOW_POOL = (
    "from django.conf import settings; "
    "print(repr(settings.DATABASES['default']['OPTIONS'].get('pool')))"
)
# The maintenance database always exists; these checks only read.
POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


def test_no_pool_by_default() -> None:
    result = run_manage("shell", "-c", SHOW_POOL, DATABASE_URL=POSTGRES, DATABASE_POOL="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "None"


def test_database_pool_sizes_come_from_the_environment() -> None:
    result = run_manage(
        "shell",
        "-c",
        SHOW_POOL,
        DATABASE_URL=POSTGRES,
        DATABASE_POOL="1",
        DATABASE_POOL_MAX_SIZE="16",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "{'min_size': 2, 'max_size': 16, 'timeout': 3}"


def test_a_request_is_served_through_the_pool() -> None:
    probe = (
        "from django.db import connection; "
        "connection.ensure_connection(); "
        "print(connection.pool is not None, connection.cursor().execute('select 1') is not None)"
    )
    result = run_manage("shell", "-c", probe, DATABASE_URL=POSTGRES, DATABASE_POOL="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True True"
