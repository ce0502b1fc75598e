"""A real Chromium (Debian's package) driven by Playwright, for the admin's support console.

No browser is ever downloaded: the test launches /usr/bin/chromium (installed by
scripts/ensure-browser.sh from `make test` where possible) and is skipped with
the reason printed when it is absent.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Headless on a closed network: no GPU, no sandbox (containers), and nothing that
# phones home (component updates, sync, background fetches, QUIC probes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser test skipped: {CHROMIUM} not found. Install Debian's Chromium "
            "(`apt-get install -y chromium`, done by `make test` when run as root)."
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("browser test skipped: the `playwright` package is not installed (dev extra).")
    return CHROMIUM


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def open_browser(chromium_path: Path) -> Callable[[], AbstractContextManager[Any]]:
    """Opens a page of a fresh headless Chromium profile, in Vietnamese (the default).

    A context manager rather than a fixture that stays open: Playwright's sync API
    runs an event loop on this thread, so the test touches the database only before
    opening the browser and after closing it (Django refuses ORM calls meanwhile).
    """

    @contextmanager
    def page() -> Iterator[Any]:
        from playwright.sync_api import sync_playwright

        with (
            tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile,
            sync_playwright() as p,
        ):
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=str(chromium_path),
                headless=True,
                args=CHROMIUM_ARGS,
                locale="vi-VN",
                viewport={"width": 1440, "height": 900},
            )
            context.set_default_timeout(15_000)
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()

    return page
