import pytest

from backend import redis as backend_redis

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_dependencies(api) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_dependency(api) -> None:
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "job_queue": "ok"},
    }


def test_readyz_is_503_when_redis_is_down(api, settings) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.5
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["details"] == {
        "checks": {"database": "ok", "redis": "unavailable", "job_queue": "ok"},
        "failed": ["redis"],
    }
    assert "redis" in body["message"]


def test_readyz_is_503_when_job_queue_table_is_missing(api, monkeypatch) -> None:
    from backend import health

    def broken() -> str:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM procrastinate_jobs_missing LIMIT 1")
        return "ok"

    monkeypatch.setitem(health.CHECKS, "job_queue", broken)
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["details"]["failed"] == ["job_queue"]


def test_redis_client_follows_settings(settings) -> None:
    assert backend_redis.get_redis() is not None
    settings.REDIS_URL = ""
    assert backend_redis.get_redis() is None


@pytest.mark.django_db(transaction=True)
def test_readyz_reports_the_embedded_queue_by_its_worker_thread(api, settings) -> None:
    from backend import embedded_queue

    settings.JOBS_INLINE = True
    embedded_queue.stop()  # no worker thread: jobs would never run
    stopped = api.get("/readyz")
    embedded_queue.start()
    try:
        started = api.get("/readyz")
    finally:
        embedded_queue.stop()

    assert stopped.status_code == 503
    assert stopped.json()["details"]["failed"] == ["job_queue"]
    assert started.status_code == 200
    assert started.json()["checks"]["job_queue"] == "embedded"
