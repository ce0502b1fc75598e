"""`make bench`: run every benchmark, print the table, write bench/results.json.

    .venv/bin/python -m bench.run [--quick] [--only NAME ...]

Each benchmark module (bench/benchmarks/NAME.py) has `run(ctx) -> list[Result]`
and may raise `NotAvailable(reason)`: its rows then say "not available: reason"
in the table and in results.json. Nothing here is part of `make test`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import resource
import sys
import traceback
from pathlib import Path

from bench.harness import BASE_DIR, Context, NotAvailable, Result
from bench.loadgen import wrk_available
from bench.profile import profile

# Order of the table. Rows a module produces when it cannot run.
BENCHMARKS: dict[str, list[tuple[str, str, str]]] = {
    "dossier_read": [
        ("dossier status read", "req/s GET dossier ÷ req/s hello (median of rounds)", ">= 0.50"),
        ("dossier status read", "p99 GET dossier ÷ p99 hello (median of rounds)", "<= 3.0"),
    ],
    "photo": [
        (
            "photo upload pipeline",
            "process_image ÷ bare Pillow full decode (plain JPEG)",
            "<= 1.15",
        ),
        (
            "photo upload pipeline",
            "process_image ÷ bare Pillow full decode (JPEG, Display P3 profile)",
            "<= 1.6",
        ),
        (
            "photo upload pipeline",
            "naive pipeline ÷ process_image (equal output, plain JPEG)",
            ">= 2.0",
        ),
    ],
    "photo_memory": [
        ("photo memory", "peak RSS growth ÷ full RGB image (w·h·3)", "<= 1.0"),
    ],
    "live_update": [
        (
            "live update",
            "commit→frame p50, concurrent writer ÷ (Redis RTT + SELECT 1 RTT + WS echo RTT)",
            "<= 3.0",
        ),
        ("live update", "commit→frame p99 with the concurrent writer (ms)", "<= 100"),
        (
            "live update",
            "commit→frame p50, concurrent writer ÷ bare relay's commit→frame p50 "
            "(same writer, interleaved), proposed",
            "<= 2.0",
        ),
    ],
    "idle_sockets": [
        ("many idle sockets", "bytes/connection project ÷ bare ASGI app", "<= 2.5"),
    ],
    "push_fanout": [
        (
            "push fan-out",
            "commit→last push deliveries/s ÷ fake FCM ceiling at the worker's connections",
            ">= 0.5",
        ),
    ],
    "push_faults": [
        ("push under faults", "drain time, commit→all final, 5 % 429/503 ÷ fault-free", "<= 2.0"),
        (
            "push under faults",
            "drain time, 5 % 429/503 ÷ (fault-free + the waits FCM asked for)",
            "<= 2.0",
        ),
        (
            "push under faults",
            "duplicates caused by the project (not by a lost answer) ÷ deliveries, crash window",
            "<= 0.0",
        ),
        ("push under faults", "duplicates at FCM's wire ÷ lost answers, crash window", "<= 1.0"),
        (
            "push under faults",
            "device-visible duplicates (copies without one collapse id), crash window",
            "<= 0.0",
        ),
    ],
    "otp": [
        ("OTP", "(send p50 + verify p50) ÷ (2 × hello p50)", "<= 2.0"),
    ],
    "wallet_attach": [
        ("wallet attach", "wallet attach (no byte copy) p50 ÷ hello p50", "<= 2"),
        ("wallet attach", "wallet attach p50 ÷ signed-in read p50 (proposed)", "<= 2"),
    ],
    "result_verify": [
        (
            "signed result verification",
            "verify a signed 2-page result ÷ read it with pypdf",
            "<= 20",
        ),
    ],
    "payment_callbacks": [
        (
            "payment callbacks",
            "callback handling p50 ÷ hello p50 (32 concurrent callbacks), median of rounds",
            "<= 3.0",
        ),
        (
            "payment callbacks",
            "server CPU per callback ÷ per hello, median of rounds (proposed)",
            "<= 3.0",
        ),
        ("payment callbacks", "duplicates (payments counted or events written twice)", "<= 0"),
    ],
}

RESULTS_FILE = BASE_DIR / "bench" / "results.json"


def _raise_open_files_limit() -> None:
    """Thousands of sockets (idle sockets benchmark): lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _unavailable(name: str, reason: str) -> list[Result]:
    return [
        Result(path=path, ratio_name=ratio_name, target=target, not_available=reason)
        for path, ratio_name, target in BENCHMARKS[name]
    ]


def run_one(name: str, ctx: Context, *, with_profile: bool) -> list[Result]:
    module = importlib.import_module(f"bench.benchmarks.{name}")
    try:
        rows = list(module.run(ctx))
    except NotAvailable as exc:
        return _unavailable(name, str(exc))
    except Exception as exc:  # a failing benchmark must not hide the others
        traceback.print_exc()
        return _unavailable(name, f"failed: {type(exc).__name__}: {exc}")
    missed = [row for row in rows if row.met is False]
    if with_profile and missed and hasattr(module, "workload"):
        sys.stdout.write(f"   missed: profiling the server ({module.PROFILE_SECONDS}s)\n")
        sys.stdout.flush()
        # The API server, unless the module says which process does its work
        # (`profile_pid(ctx)`: e.g. the push worker, or a server of its own).
        pid = module.profile_pid(ctx) if hasattr(module, "profile_pid") else ctx.api_server.pid
        idle = getattr(module, "PROFILE_IDLE", False)  # a latency row: its waits count
        found = profile(pid, name, lambda: module.workload(ctx), module.PROFILE_SECONDS, idle=idle)
        for row in missed:
            row.profile = found
    elif with_profile and hasattr(module, "PROFILE_NOTE"):
        for row in missed:  # a memory row: a CPU sampler has nothing to say about it
            row.profile = {"not_profiled": module.PROFILE_NOTE}
    return rows


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def table(results: list[Result]) -> str:
    lines = ["| path | ratio | target | measured | status |", "|---|---|---|---|---|"]
    for result in results:
        status = result.as_dict()["status"].split(";")[0]
        target = result.target.replace(">=", "≥").replace("<=", "≤")
        lines.append(
            f"| {result.path} | {result.ratio_name} | {target} | {_fmt(result.ratio)} | {status} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke test)")
    parser.add_argument("--only", nargs="*", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the server (py-spy) where a target is missed",
    )
    args = parser.parse_args(argv)

    _raise_open_files_limit()
    ctx = Context(quick=args.quick)
    ctx.profiling = args.profile
    names = args.only or list(BENCHMARKS)
    results: list[Result] = []
    started = dt.datetime.now(dt.UTC)
    try:
        for name in names:
            sys.stdout.write(f"== {name}\n")
            sys.stdout.flush()
            rows = run_one(name, ctx, with_profile=args.profile)
            for row in rows:
                shown = row.not_available and f"not available: {row.not_available}"
                sys.stdout.write(
                    f"   {row.ratio_name}: {shown or _fmt(row.ratio)} (target {row.target})\n"
                )
                if row.figures:
                    sys.stdout.write(f"   figures: {json.dumps(row.figures, ensure_ascii=False)}\n")
                for note in row.notes:
                    sys.stdout.write(f"   note: {note}\n")
            found = next((row.profile for row in rows if row.profile), {})
            for line in found.get("project_frames_inclusive", []):
                sys.stdout.write(f"   profile: {line}\n")
            results.extend(rows)
    finally:
        ctx.close()

    report = {
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "quick": args.quick,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "http_load_generator": "wrk" if wrk_available() else "python-httpx",
        },
        "server_commands": ctx.commands,
        "results": [result.as_dict() for result in results],
    }
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.write("\n" + table(results) + "\n")
    sys.stdout.write(f"\nwritten to {args.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
