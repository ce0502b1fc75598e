"""Verifying a signed 2-page result against reading it with pypdf (fresh process, CPU time)."""

from __future__ import annotations

import json
import subprocess

from bench.harness import PYTHON, Context, Result, bench_env

PATH = "signed result verification"
PROFILE_SECONDS = 8


def run(ctx: Context) -> list[Result]:
    done = subprocess.run(  # noqa: S603 - our interpreter and module
        [PYTHON, "-m", "bench.result_verify_worker", "5" if ctx.quick else "15"],
        env=bench_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [
        Result(
            path=PATH,
            ratio_name="verify a signed 2-page result ÷ read it with pypdf",
            target="<= 20",
            ratio=figures["verify"]["cpu_ms"] / figures["read"]["cpu_ms"],
            figures=figures,
            measured_by="CPU time, median",
        )
    ]
    if ctx.profiling and rows[0].met is False:
        from bench.profile import profile_loop

        rows[0].profile = profile_loop(
            "result_verify",
            [PYTHON, "-m", "bench.result_verify_worker", "loop", str(PROFILE_SECONDS + 5)],
            PROFILE_SECONDS,
        )
    return rows
