"""A throwaway PostgreSQL cluster of its own, for the benchmarks that need one.

The live update row depends on the cluster, not only on the database: the
stream sends an event once every transaction that started before it has ended,
cluster-wide (tracking/stream.py). On a cluster shared with other work (test
suites holding transactions open) frames wait for the socket's re-check, so the
row would measure the neighbours. `initdb` + `pg_ctl` on a free loopback port,
in a temporary directory removed on stop; as root, run as the `postgres` user
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.harness import NotAvailable, free_port


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    # Debian keeps the server binaries off PATH.
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


class Cluster:
    """`with Cluster() as cluster:` → `cluster.url(name)` is a database URL on it."""

    def __init__(self) -> None:
        binaries = _binaries()
        if binaries is None:
            raise NotAvailable("initdb not found (Debian: the postgresql package)")
        self.binaries = binaries
        self.port = free_port()
        self.runner: list[str] = []
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise NotAvailable("running as root and there is no postgres user") from exc
            self.runner = ["runuser", "-u", "postgres", "--"]
        self.directory = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        if owner is not None:
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self.data = self.directory / "data"

    def version(self) -> str:
        done = subprocess.run(  # noqa: S603 - PostgreSQL's own binary, fixed arguments
            [str(self.binaries / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() or "PostgreSQL"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(  # noqa: S603 - PostgreSQL's own tools, fixed arguments
            [*self.runner, *argv], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise NotAvailable(
                f"{Path(argv[0]).name} failed: {(done.stderr or done.stdout)[-300:]}"
            )

    def start(self) -> Cluster:
        try:
            self._run(
                str(self.binaries / "initdb"),
                *("-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
                "--no-sync",
            )
            options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            self._run(
                str(self.binaries / "pg_ctl"),
                *("-D", str(self.data), "-o", options, "-l", str(self.directory / "log")),
                *("-w", "start"),
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            pg_ctl = [*self.runner, str(self.binaries / "pg_ctl"), "-D", str(self.data)]
            subprocess.run(  # noqa: S603 - pg_ctl, fixed arguments
                [*pg_ctl, "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
