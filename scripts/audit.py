"""Audit the locked dependencies for known vulnerabilities (run by `make lint`).

    python scripts/audit.py [--lock requirements.lock] [--ignore-file audit-ignore.txt]

Runs pip-audit on the exact versions of requirements.lock (no resolution, no pip)
and decides:
- a vulnerability not listed in audit-ignore.txt: fail (status 1), naming it and
  the versions that fix it;
- every package unaudited (the vulnerability service cannot be reached from this
  machine, answers "not found" for everything, or pip-audit timed out): say so
  loudly and pass, since that is outside the project;
- some packages audited and some not: fail, as pip-audit's --strict would (a
  locked package the service does not know is worth a look);
- otherwise: pass, with the count of packages audited.

audit-ignore.txt: one vulnerability id per line, then its reason (why it does not
apply, or until when it is accepted); `#` starts a comment. An id without a reason
is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Messages of requests/urllib3/pip-audit when the service cannot be reached at all.
UNREACHABLE_SIGNS = (
    "ConnectionError",
    "Could not connect",
    "Failed to resolve",
    "NameResolutionError",
    "Max retries exceeded",
    "Failed to establish a new connection",
    "timed out",
    "Timeout",
)


@dataclass
class Verdict:
    ok: bool
    message: str
    findings: list[str] = field(default_factory=list)
    warning: bool = False  # passes, but says so on stderr: nothing was checked


def read_ignores(path: Path) -> dict[str, str]:
    """`{vulnerability id: reason}` from the ignore file (absent: nothing ignored)."""
    if not path.exists():
        return {}
    ignores: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        vuln_id, _, reason = line.partition(" ")
        if not reason.strip():
            raise ValueError(f"{path.name}:{number}: {vuln_id} needs a reason after its id")
        ignores[vuln_id] = reason.strip()
    return ignores


def judge(report: dict[str, Any]) -> Verdict:
    """The verdict on pip-audit's JSON report (`-f json`)."""
    dependencies = report.get("dependencies", [])
    skipped = [dep for dep in dependencies if "skip_reason" in dep]
    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    findings = [
        f"{dep['name']} {dep['version']}: {vuln['id']}"
        + (f" ({', '.join(vuln.get('aliases', []))})" if vuln.get("aliases") else "")
        + (
            f", fixed in {', '.join(vuln['fix_versions'])}"
            if vuln.get("fix_versions")
            else ", no fix yet"
        )
        for dep in audited
        for vuln in dep.get("vulns", [])
    ]
    if findings:
        return Verdict(
            False,
            f"pip-audit: {len(findings)} known vulnerabilit{'y' if len(findings) == 1 else 'ies'}"
            " in the locked dependencies: upgrade (make lock) or justify in audit-ignore.txt",
            findings,
        )
    if dependencies and not audited:
        return unreachable(len(skipped), skipped[0]["skip_reason"])
    if skipped:
        return Verdict(
            False,
            f"pip-audit: {len(skipped)} of {len(dependencies)} packages could not be audited",
            [f"{dep['name']}: {dep['skip_reason']}" for dep in skipped],
        )
    return Verdict(True, f"pip-audit: {len(audited)} packages audited, no known vulnerabilities")


def unreachable(count: int, why: str) -> Verdict:
    return Verdict(
        True,
        "pip-audit: WARNING: vulnerability service unreachable from this machine; "
        f"{count} packages not audited ({why.strip()[:300]}). Nothing was checked: "
        "run `make lint` where PyPI's JSON API is reachable to audit them.",
        warning=True,
    )


def locked_packages(lock: Path) -> int:
    return sum(
        1
        for line in lock.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    )


def audit(
    lock: Path,
    ignores: dict[str, str],
    *,
    command: list[str],
    timeout: float,
    socket_timeout: int,
) -> Verdict:
    args = [
        *command,
        "--requirement",
        str(lock),
        "--no-deps",
        "--disable-pip",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "--timeout",
        str(socket_timeout),
    ]
    for vuln_id in ignores:
        args += ["--ignore-vuln", vuln_id]
    try:
        result = subprocess.run(  # noqa: S603 - our own command line, no shell
            args, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return unreachable(locked_packages(lock), f"no answer within {timeout:g} s")
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = None
    if isinstance(report, dict):
        return judge(report)
    errors = result.stderr.strip().splitlines()
    last = errors[-1] if errors else f"exit status {result.returncode}"
    if any(sign in result.stderr for sign in UNREACHABLE_SIGNS):
        return unreachable(locked_packages(lock), last)
    return Verdict(False, f"pip-audit failed: {last}", errors[-20:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--ignore-file", type=Path, default=ROOT / "audit-ignore.txt")
    parser.add_argument(
        "--pip-audit",
        default=str(Path(sys.executable).with_name("pip-audit")),
        help="the pip-audit executable (default: next to this Python)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("AUDIT_TIMEOUT_SECONDS", "300")),
        help="the whole audit, in seconds (AUDIT_TIMEOUT_SECONDS, default 300)",
    )
    parser.add_argument("--socket-timeout", type=int, default=15)
    options = parser.parse_args(argv)
    try:
        ignores = read_ignores(options.ignore_file)
    except ValueError as exc:
        print(f"pip-audit: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    verdict = audit(
        options.lock,
        ignores,
        command=[options.pip_audit],
        timeout=options.timeout,
        socket_timeout=options.socket_timeout,
    )
    stream = sys.stdout if verdict.ok and not verdict.warning else sys.stderr
    print(verdict.message, file=stream)
    for line in verdict.findings:
        print(f"  {line}", file=stream)
    if ignores:
        print(f"pip-audit: ignored as justified in {options.ignore_file.name}:", file=stream)
        for vuln_id, reason in ignores.items():
            print(f"  {vuln_id}: {reason}", file=stream)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
