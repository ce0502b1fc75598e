"""The Procfile's `web` command as a process of its own, on the test database.

For tests that need what only a real server shows: its log output, and how it
reads (or stops reading) a request body off the socket. The server shares the
test's database (rows must be committed: `django_db(transaction=True)`), Redis
database, SECRET_KEY and MEDIA_ROOT, so tokens signed in the test work there.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

from fakes.harness import ROOT, free_port, procfile_command

VENV_BIN = ROOT / ".venv" / "bin"

START_SECONDS = 60


@dataclass
class WebProcess:
    address: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 30) -> str:
        """The log once it contains `needle` (a line written after a request ended)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if needle in text:
                return text
            assert time.monotonic() < deadline, f"{needle!r} never logged:\n{text[-3000:]}"
            time.sleep(0.05)


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@contextlib.contextmanager
def web_process(workdir: Path, **extra_env: str) -> Iterator[WebProcess]:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST", "TEST_DATABASE"))
    }
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "PORT": str(port),
            "DATABASE_URL": _database_url(),
            "REDIS_URL": os.environ.get("REDIS_URL", ""),
            "SECRET_KEY": settings.SECRET_KEY,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "OUTBOX_DIR": str(workdir / "outbox"),
            "JOBS_INLINE": "0",
            "DEBUG": "0",
            "LOG_LEVEL": "INFO",
            **extra_env,
        }
    )
    log_path = workdir / "web.log"
    with log_path.open("ab") as log:
        # `exec` keeps the process id ours, so signals reach the server itself.
        process = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {procfile_command('web')}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = WebProcess(f"127.0.0.1:{port}", log_path, process)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, f"web exited:\n{server.log()[-3000:]}"
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"web did not start:\n{server.log()[-3000:]}"
            time.sleep(0.1)
        yield server
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
