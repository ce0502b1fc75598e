"""Keep every core busy for a bounded time, optionally while a command runs.

    python scripts/cpu-hog.py --seconds 600                 # hog for 10 minutes
    python scripts/cpu-hog.py --seconds 1800 -- make test   # hog while the command runs

With a command, the hog stops when the command ends (or at --seconds, whichever is
first) and the script exits with the command's status, so a flaky test shows up
as a failing run on a machine with no idle core. One busy process per core
(--processes, default: every core the scheduler gives this process); each is a
plain Python loop (no I/O), killed at the end whatever happens.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time

MAX_SECONDS = 4 * 3600


def burn(until: float) -> None:
    count = 0
    while time.monotonic() < until:
        for _ in range(100_000):
            count += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600, help="upper bound (default 600)")
    parser.add_argument(
        "--processes",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="busy processes (default: one per usable core)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command to run meanwhile")
    args = parser.parse_args(argv)
    seconds = min(max(args.seconds, 0.0), MAX_SECONDS)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    until = time.monotonic() + seconds
    hogs = [
        multiprocessing.Process(target=burn, args=(until,), daemon=True)
        for _ in range(max(1, args.processes))
    ]
    for hog in hogs:
        hog.start()
    sys.stderr.write(f"cpu-hog: {len(hogs)} busy processes for at most {seconds:.0f} s\n")
    status = 0
    try:
        if command:
            try:
                # The developer's own command line, run as given.
                run = subprocess.run(command, check=False, timeout=seconds)  # noqa: S603  # nosec B603
                status = run.returncode
            except subprocess.TimeoutExpired:
                sys.stderr.write("cpu-hog: the command outlived the hog's bound; stopped\n")
                status = 124
        else:
            for hog in hogs:
                hog.join()
    finally:
        for hog in hogs:
            if hog.is_alive():
                hog.terminate()
        for hog in hogs:
            hog.join(timeout=5)
    return status


if __name__ == "__main__":
    sys.exit(main())
