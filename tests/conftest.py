"""Shared fixtures: a JSON API client, users and signed-in sessions, clean Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from procrastinate.contrib.django import app as job_app

from auth.actions.sessions import start_session
from auth.models import DeviceSession, User
from auth.tokens import TokenPair
from backend.redis import get_redis
from dossiers.catalogue import forget_required_documents
from fakes.business_registry import FakeBusinessRegistry, demo_enterprise
from fakes.identity_provider import FakeIdentityProvider


class ApiResponse:
    def __init__(self, response: Any) -> None:
        self.raw = response
        self.status_code: int = response.status_code
        self.headers = response.headers

    def json(self) -> Any:
        return json.loads(self.raw.content)

    @property
    def content(self) -> bytes:
        return bytes(self.raw.content)

    def __repr__(self) -> str:
        return f"<ApiResponse {self.status_code} {self.raw.content[:300]!r}>"


class ApiClient:
    """Talks to the app through Django's full middleware stack, like the mobile app."""

    def __init__(self, token: str | None = None, language: str | None = None) -> None:
        self.client = Client()
        self.token = token
        self.language = language

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        merged: dict[str, str] = {}
        if self.token:
            merged["Authorization"] = f"Bearer {self.token}"
        if self.language:
            merged["Accept-Language"] = self.language
        merged.update(headers or {})
        return merged

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        data: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> ApiResponse:
        call = getattr(self.client, method.lower())
        kwargs: dict[str, Any] = {"headers": self._headers(headers)}
        if method.upper() == "GET":
            return ApiResponse(call(path, data=query or {}, **kwargs))
        if data is not None:  # multipart
            return ApiResponse(call(path, data=data, **kwargs))
        body = raw if raw is not None else (json.dumps(json_body) if json_body is not None else "")
        return ApiResponse(call(path, data=body, content_type=content_type, **kwargs))

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, json_body, **kwargs)

    def put(self, path: str, json_body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("PUT", path, json_body, **kwargs)

    def patch(self, path: str, json_body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("PATCH", path, json_body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("DELETE", path, **kwargs)


def make_user(
    phone: str | None = None,
    *,
    password: str = "Str0ng-pass!word",
    full_name: str = "Lê Thị Hoa",
    level: int = User.Level.PHONE,
    **extra: Any,
) -> User:
    from django.utils import timezone

    if phone is None:
        phone = f"+8491{uuid.uuid4().int % 10**7:07d}"
    return User.objects.create_user(
        phone,
        password,
        full_name=full_name,
        verification_level=level,
        phone_verified_at=timezone.now() if level >= User.Level.PHONE else None,
        **extra,
    )


def sign_in(
    user: User, device_id: str | None = None, **extra: Any
) -> tuple[DeviceSession, TokenPair]:
    return start_session(user, device_id=device_id or uuid.uuid4().hex, **extra)


def api_as(user: User, language: str | None = None) -> ApiClient:
    """An API client signed in as `user` on a new device (in `language`, if given)."""
    return ApiClient(token=sign_in(user)[1].access_token, language=language)


@pytest.fixture(autouse=True)
def _clean_redis() -> None:
    """Each test starts with an empty test Redis database (cache, counters, layer) and
    no catalogue data cached in memory."""
    client = get_redis()
    if client is not None:
        client.flushdb()
    cache.clear()
    forget_required_documents()


@pytest.fixture(autouse=True)
def _outbox(settings: Any, tmp_path: Path) -> Path:
    settings.OUTBOX_DIR = tmp_path / "outbox"
    return Path(settings.OUTBOX_DIR)


@pytest.fixture
def outbox_dir(_outbox: Path) -> Path:
    return _outbox


@pytest.fixture(autouse=True)
def _no_default_quiet_hours(request: pytest.FixtureRequest, settings: Any) -> None:
    """The shipped default holds non-urgent pushes from 22:00 to 07:00 in Vietnam, that is
    15:00 to 00:00 UTC, so a test expecting a push to go now would pass or fail by the
    hour it runs at. Tests run with no default quiet hours: a test about quiet hours
    sets a user's own, or carries `@pytest.mark.shipped_quiet_hours` and sets the clock."""
    if request.node.get_closest_marker("shipped_quiet_hours") is None:
        settings.NOTIFICATIONS_QUIET_START = settings.NOTIFICATIONS_QUIET_END = "00:00"


@pytest.fixture(autouse=True)
def _empty_sms_queue(request: pytest.FixtureRequest) -> None:
    """Each test that uses the database starts with no SMS job queued: the job table
    is not flushed between tests (procrastinate's models are not Django's to flush), so
    the codes and notices an earlier transactional test queued would be sent in this
    one when it runs its queued SMS jobs (tests/accounts/conftest.py `deliver_sms`)."""
    marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    if "transactional_db" in names or (marker is not None and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif "db" in names or marker is not None:
        request.getfixturevalue("db")
    else:
        return
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE queue_name = 'sms'")


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


@pytest.fixture
def user(db: None) -> User:
    return make_user()


@pytest.fixture
def user_api(user: User) -> ApiClient:
    _, tokens = sign_in(user)
    return ApiClient(token=tokens.access_token)


def due_jobs(queues: Sequence[str]) -> int:
    """Jobs of `queues` that are `todo` and due, as a worker sees them (committed only)."""
    params = connection.get_connection_params()
    for sync_only in ("cursor_factory", "context"):
        params.pop(sync_only, None)
    with psycopg.connect(**params, autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = ANY(%s) "
            "AND status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())",
            [list(queues)],
        ).fetchone()
    return int(row[0]) if row else 0


def run_jobs_until_idle(queues: Sequence[str], timeout: float = 60) -> None:
    """Run the real worker on `queues` until no job of theirs is `todo` and due.

    procrastinate's `run_worker(wait=False)` stops as soon as one fetch finds nothing,
    which can leave behind a job that a running job deferred meanwhile (or one that
    came due): the worker runs again until the condition holds, within `timeout`.
    Jobs scheduled later (a retry's backoff) are not waited for.
    """
    deadline = time.monotonic() + timeout
    connector = job_app.connector.get_worker_connector()  # type: ignore[attr-defined]
    with job_app.replace_connector(connector):
        while True:
            job_app.run_worker(queues=list(queues), wait=False, install_signal_handlers=False)
            left = due_jobs(queues)
            if not left:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{left} jobs of {list(queues)} still due after {timeout} s")


def work_queued_jobs(queues: Sequence[str]) -> list[tuple[str, str]]:
    """Run the due jobs of `queues` here, on this test's own database connection, the
    way the worker takes them: fetched one at a time by the queue's own function
    (priority, then age; `doing`), run by their task's function, then finished
    (`succeeded`, or `failed` and the error raised). Jobs they defer run too.

    For tests in a transaction that is never committed (`db`), whose jobs no worker
    can see: `run_jobs_until_idle` runs the real worker on committed jobs, retries
    included. Returns (task name, result) of each job run, in order.
    """
    from backend.jobs import task_named

    done: list[tuple[str, str]] = []
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, task_name, args FROM procrastinate_fetch_job_v2(%s, NULL)",
                [list(queues)],
            )
            job_id, task_name, args = cursor.fetchone()
        if job_id is None:
            return done
        try:
            kwargs = json.loads(args) if isinstance(args, str) else args
            result = task_named(task_name).func(**kwargs)
        except Exception:
            _finish_job(job_id, "failed")
            raise
        _finish_job(job_id, "succeeded")
        done.append((task_name, result))


def _finish_job(job_id: int, status: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT procrastinate_finish_job_v1(%s, %s, false)", [job_id, status])


@pytest.fixture(scope="session")
def _identity_provider() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider() as provider:
        yield provider


@pytest.fixture
def idp(_identity_provider: FakeIdentityProvider, settings: Any) -> FakeIdentityProvider:
    """The fake national identity provider (HTTP on loopback), wired into settings."""
    _identity_provider.reset()
    settings.NATIONAL_ID_ISSUER = _identity_provider.issuer
    settings.NATIONAL_ID_CLIENT_ID = _identity_provider.client_id
    settings.NATIONAL_ID_CLIENT_SECRET = _identity_provider.client_secret
    return _identity_provider


@pytest.fixture(scope="session")
def _business_registry() -> Iterator[FakeBusinessRegistry]:
    with FakeBusinessRegistry() as registry:
        yield registry


@pytest.fixture
def registry(_business_registry: FakeBusinessRegistry, settings: Any) -> FakeBusinessRegistry:
    """The fake business registry (HTTP on loopback) with its demo enterprise, wired in."""
    _business_registry.reset()
    _business_registry.register(demo_enterprise())
    settings.BUSINESS_REGISTRY_URL = _business_registry.base_url
    settings.BUSINESS_REGISTRY_API_KEY = _business_registry.api_key
    return _business_registry


@pytest.fixture
def embedded_jobs(settings: Any, transactional_db: None) -> Iterator[Any]:
    """The embedded default's job queue (procrastinate in memory, worked by a thread of
    this process), on the test database: jobs run on their own connections, so the test
    commits (transactional_db). `embedded_jobs.wait_idle()` waits for every due job."""
    from backend import embedded_queue
    from fakes.harness import wait_until

    settings.JOBS_INLINE = True
    embedded_queue.start()

    class Jobs:
        queue = embedded_queue

        @staticmethod
        def wait_idle(timeout: float = 20) -> None:
            wait_until(embedded_queue.idle, timeout=timeout, what="the embedded queue idle")

    yield Jobs
    Jobs.wait_idle()  # no job left running on the test database
    embedded_queue.stop()
    embedded_queue.install().connector.reset()  # type: ignore[attr-defined]


# --- Object storage: a real S3-speaking server process ----------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """moto's standalone S3 server as its own process on loopback (never an
    in-process mock), shared by the session; each test gets its own bucket."""
    from fakes.harness import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(settings: Any, s3_server: Any) -> str:
    """The default storage is django-storages' S3 backend on a fresh bucket."""
    bucket = s3_server.bucket(f"test-{uuid.uuid4().hex[:20]}")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": settings.S3_STORAGE, "OPTIONS": s3_server.options(bucket)},
    }
    return bucket
