"""Sampling profile of the API server while a benchmark's workload runs (py-spy).

Used by `bench.run --profile` for the rows that miss their target: the raw
stacks go to var/bench/profile-NAME.txt, and the hottest frames (share of the
busy samples in which the frame is on the stack) go into results.json.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import BASE_DIR, VAR_DIR, bench_env

# Frames where a thread waits rather than works (an idle event loop or executor).
_IDLE = (
    "Condition.wait",
    "_worker (concurrent/futures/thread.py",
    "EpollSelector.select",
    "Thread._wait_for_tstate_lock",
    "Event.wait",
)
_PROJECT = (
    *("auth/", "dossiers/", "backend/", "tracking/", "notifications/", "postal/"),
    *("payments/", "documents/"),
)


def py_spy() -> str | None:
    candidate = BASE_DIR / ".venv" / "bin" / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def profile(
    pid: int, name: str, workload: Callable[[], Any], seconds: int, *, idle: bool = False
) -> dict[str, Any]:
    """Sample `pid` for `seconds` while `workload()` runs; summarise the busy samples
    (`idle`: as start_profile's)."""
    finish = start_profile(pid, name, seconds, idle=idle)
    workload()
    return finish()


def start_profile(
    pid: int, name: str, seconds: int, *, idle: bool = False
) -> Callable[[], dict[str, Any]]:
    """Start sampling `pid` for `seconds`; the function returned waits for the end and
    summarises (for a process that only exists while the workload runs: a worker).
    `idle`: also sample threads blocked in a system call (py-spy --idle), for a
    process that mostly waits on its database or its peers: the waits on a socket
    (psycopg, an HTTP answer) are then on record, the idle event loop and executor
    threads are still left out by the summary."""
    binary = py_spy()
    if binary is None:
        return lambda: {"error": "py-spy is not installed (pip install py-spy)"}
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    raw = VAR_DIR / f"profile-{name}.txt"
    raw.unlink(missing_ok=True)
    sampler = subprocess.Popen(  # noqa: S603 - py-spy, fixed arguments
        [
            *(binary, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100"),
            *("--format", "raw", "--output", str(raw), "--nonblocking"),
            *(("--idle",) if idle else ()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def finish() -> dict[str, Any]:
        _, stderr = sampler.communicate(timeout=seconds + 60)
        if sampler.returncode != 0 or not raw.exists():
            return {"error": f"py-spy failed: {stderr.decode(errors='replace')[-300:]}"}
        # With --idle, uvloop's wait for the next event has the loop's Python frame
        # (Runner.run) on top: waiting, not working.
        return summarise(raw, also_idle=("Runner.run (asyncio/runners.py",) if idle else ())

    return finish


def summarise(raw: Path, top: int = 12, also_idle: tuple[str, ...] = ()) -> dict[str, Any]:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(frames[-1].startswith(idle) for idle in (*_IDLE, *also_idle)):
            continue
        samples = int(count)
        busy += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not busy:
        return {"busy_samples": 0}

    def share(counter: collections.Counter[str], keep: Callable[[str], bool]) -> list[str]:
        return [
            f"{100 * n / busy:.1f}% {frame}" for frame, n in counter.most_common() if keep(frame)
        ][:top]

    return {
        "raw": str(raw.relative_to(BASE_DIR)),
        "busy_samples": busy,
        "project_frames_inclusive": share(
            inclusive,
            lambda frame: (
                any(f"({path}" in frame for path in _PROJECT) and "middleware.py" not in frame
            ),
        ),
        "hottest_own": share(own, lambda frame: True),
    }


def profile_loop(name: str, command: list[str], seconds: int) -> dict[str, Any]:
    """py-spy on a fresh process of its own (`command`, a `loop` mode of one of the
    bench's workers: it prints "ready" once set up, then repeats the measured work for
    longer than `seconds`), for a row whose work is not a server's: a photo, a
    signature check."""
    process = subprocess.Popen(  # noqa: S603 - our interpreter and module
        command, env=bench_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None  # noqa: S101
        if process.stdout.readline().strip() != "ready":
            return {"error": f"{name}: the loop did not start"}
        return start_profile(process.pid, name, seconds)()
    finally:
        process.communicate(timeout=120)
