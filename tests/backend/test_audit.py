"""scripts/audit.py (`make lint`): its three outcomes, with a stand-in for pip-audit.

The stand-in is a small executable that answers the way pip-audit 2.9 does
(`-f json` on stdout, exit status 1 when it finds something, a traceback when
the service cannot be reached), so the script's own command line is exercised.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit", ROOT / "scripts" / "audit.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


audit = _load()

VULN = {"id": "GHSA-aaaa-bbbb-cccc", "fix_versions": ["5.2.99"], "aliases": ["CVE-2026-0001"]}
NOT_FOUND = "Dependency not found on PyPI and could not be audited: {} ({})"


def report(**deps: Any) -> dict[str, Any]:
    """pip-audit's JSON: name=[vulns] for an audited package, name=None for a skipped one."""
    return {
        "dependencies": [
            {"name": name, "version": "1.0", "vulns": vulns}
            if vulns is not None
            else {"name": name, "skip_reason": NOT_FOUND.format(name, "1.0")}
            for name, vulns in deps.items()
        ],
        "fixes": [],
    }


def fake_pip_audit(tmp_path: Path, body: str) -> list[str]:
    """An executable standing in for pip-audit; `args` are its arguments."""
    script = tmp_path / "fake_pip_audit.py"
    script.write_text(f"import json, sys, time\nargs = sys.argv[1:]\n{textwrap.dedent(body)}")
    return [sys.executable, str(script)]


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text("django==5.2.1\nredis==8.1.0\n")
    return path


def run(lock: Path, command: list[str], ignores: dict[str, str] | None = None) -> Any:
    return audit.audit(lock, ignores or {}, command=command, timeout=10, socket_timeout=1)


def test_a_vulnerability_not_ignored_fails_and_names_the_fix() -> None:
    verdict = audit.judge(report(django=[VULN], redis=[]))

    assert not verdict.ok
    assert verdict.findings == ["django 1.0: GHSA-aaaa-bbbb-cccc (CVE-2026-0001), fixed in 5.2.99"]


def test_an_unreachable_service_passes_loudly_with_the_count() -> None:
    verdict = audit.judge(report(django=None, redis=None))

    assert verdict.ok
    assert verdict.warning
    assert "vulnerability service unreachable from this machine" in verdict.message
    assert "2 packages not audited" in verdict.message


def test_some_packages_unaudited_while_others_are_fails_like_strict() -> None:
    verdict = audit.judge(report(django=[], redis=None))

    assert not verdict.ok
    assert verdict.findings == [f"redis: {NOT_FOUND.format('redis', '1.0')}"]


def test_everything_audited_and_clean_passes() -> None:
    verdict = audit.judge(report(django=[], redis=[]))

    assert verdict.ok
    assert verdict.message == "pip-audit: 2 packages audited, no known vulnerabilities"


def test_the_ignore_list_reaches_pip_audit_and_silences_only_its_ids(
    tmp_path: Path, lock: Path
) -> None:
    found = json.dumps(report(django=[VULN], redis=[]))
    clean = json.dumps(report(django=[], redis=[]))
    command = fake_pip_audit(
        tmp_path,
        f"""
        assert args[args.index("--requirement") + 1].endswith("requirements.lock")
        assert "--no-deps" in args and "--disable-pip" in args
        ignored = "--ignore-vuln" in args and args[args.index("--ignore-vuln") + 1]
        print({clean!r} if ignored == "GHSA-aaaa-bbbb-cccc" else {found!r})
        sys.exit(0 if ignored else 1)
        """,
    )

    assert not run(lock, command).ok
    assert run(lock, command, {"GHSA-aaaa-bbbb-cccc": "not reachable from our code"}).ok
    assert not run(lock, command, {"GHSA-zzzz-zzzz-zzzz": "another one"}).ok


def test_a_connection_error_or_a_hang_counts_as_unreachable(tmp_path: Path, lock: Path) -> None:
    refused = fake_pip_audit(
        tmp_path,
        """
        sys.stderr.write("requests.exceptions.ConnectionError: Max retries exceeded\\n")
        sys.exit(1)
        """,
    )
    verdict = run(lock, refused)
    assert verdict.ok
    assert "unreachable" in verdict.message
    assert "2 packages not audited" in verdict.message

    hangs = fake_pip_audit(tmp_path, "time.sleep(60)")
    verdict = audit.audit(lock, {}, command=hangs, timeout=0.5, socket_timeout=1)
    assert verdict.ok
    assert "no answer within 0.5 s" in verdict.message


def test_pip_audit_failing_for_another_reason_fails(tmp_path: Path, lock: Path) -> None:
    broken = fake_pip_audit(tmp_path, 'sys.stderr.write("invalid requirement: x\\n"); sys.exit(2)')

    verdict = run(lock, broken)

    assert not verdict.ok
    assert verdict.message == "pip-audit failed: invalid requirement: x"


def test_an_ignored_id_needs_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "audit-ignore.txt"
    path.write_text("# comment\nPYSEC-2026-1  only in the admin, which is not exposed\nGHSA-x\n")

    with pytest.raises(ValueError, match="GHSA-x needs a reason"):
        audit.read_ignores(path)
    path.write_text("PYSEC-2026-1  only in the admin  # until 5.3\n")
    assert audit.read_ignores(path) == {"PYSEC-2026-1": "only in the admin"}
