"""The web and worker processes keep what they load at startup out of the garbage
collector's full collections (backend/gc_freeze.py)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

from django.conf import settings

from backend import gc_freeze

# What a fresh process reports: objects frozen, objects a full collection still walks.
PROBE = """
import gc, json
{imports}
print(json.dumps({{"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects())}}))
"""


def _fresh_process(imports: str, **env: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(imports=imports)],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "backend.settings", **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_the_server_freezes_what_it_loaded_and_full_collections_skip_it() -> None:
    report = _fresh_process("import backend.asgi")

    # Django, the apps, the URLconf and every API router: well over 100,000 objects,
    # none of which a full collection walks any more.
    assert report["frozen"] > 100_000
    assert report["walked"] < report["frozen"] / 10


def test_the_freeze_can_be_turned_off() -> None:
    report = _fresh_process("import backend.asgi", GC_FREEZE_AT_STARTUP="0")

    assert report["frozen"] == 0
    assert report["walked"] > 100_000


def test_the_worker_freezes_after_its_warm_up(monkeypatch) -> None:
    from backend.management.commands import worker

    steps: list[str] = []
    monkeypatch.setattr(worker, "warm_up", lambda: steps.append("warm-up"))
    monkeypatch.setattr(worker, "freeze_startup_objects", lambda: steps.append("freeze") or 1)
    monkeypatch.setattr(worker, "supervise", _no_supervise)

    worker.Command().handle(concurrency=1)

    assert steps == ["warm-up", "freeze"]


async def _no_supervise(options: dict[str, int]) -> int:
    return 0


def test_freezing_answers_how_many_objects_froze(settings) -> None:
    settings.GC_FREEZE_AT_STARTUP = True
    try:
        frozen = gc_freeze.freeze_startup_objects()
        # The permanent generation only shrinks until the next freeze: a frozen object
        # freed by any thread of this process (they keep running) leaves it. So the
        # count read now is at most what the freeze reported, never more.
        still_frozen = gc.get_freeze_count()
        assert frozen > 100_000
        assert 0 < still_frozen <= frozen
    finally:
        gc.unfreeze()  # this test process goes on as before
