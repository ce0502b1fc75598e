"""What `manage.py worker` does before it listens for jobs."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connections

from backend.management.commands.worker import SPARE_THREADS, keep_a_connection_per_job


@pytest.fixture
def options(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The default database's OPTIONS, restored after the test."""
    current = connections["default"].settings_dict.setdefault("OPTIONS", {})
    copy = dict(current)
    monkeypatch.setitem(connections["default"].settings_dict, "OPTIONS", copy)
    return copy


def test_the_pool_keeps_a_connection_per_job_the_worker_runs(options) -> None:
    options["pool"] = {"min_size": 2, "max_size": 10, "timeout": 3}

    keep_a_connection_per_job(8)

    assert options["pool"] == {"min_size": 8, "max_size": 10, "timeout": 3}


def test_the_pool_grows_its_maximum_when_the_concurrency_exceeds_it(options) -> None:
    options["pool"] = {"min_size": 2, "max_size": 10}

    keep_a_connection_per_job(16)

    # A connection per job, and one per spare thread of the worker's loop.
    assert options["pool"] == {"min_size": 16, "max_size": 16 + SPARE_THREADS}


def test_a_larger_configured_minimum_is_kept(options) -> None:
    options["pool"] = {"min_size": 12, "max_size": 20}

    keep_a_connection_per_job(8)

    assert options["pool"] == {"min_size": 12, "max_size": 20}


def test_without_a_pool_nothing_changes(options) -> None:
    options.pop("pool", None)
    before = dict(options)

    keep_a_connection_per_job(8)

    assert options == before
