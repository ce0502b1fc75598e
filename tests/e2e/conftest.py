"""Fixtures of the end-to-end tests: one migrated template database per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import migrated_template


@pytest.fixture(scope="session")
def e2e_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_template(Path(tmp_path_factory.mktemp("template"))) as name:
        yield name
