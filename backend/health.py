"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from backend.errors import error_response
from backend.redis import get_redis

logger = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and answering; checks no dependency."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_redis() -> str:
    client = get_redis()
    if client is None:
        return "embedded"
    client.ping()
    return "ok"


def _check_job_queue() -> str:
    if settings.JOBS_INLINE:
        # The embedded default: jobs are worked by a thread of this process; without
        # it nothing would ever send a push or scan a deadline.
        from backend import embedded_queue

        if not embedded_queue.running():
            raise RuntimeError("the embedded job worker is not running")
        return "embedded"
    with connection.cursor() as cursor:
        # The queue's own table: present and readable means workers can fetch.
        cursor.execute("SELECT 1 FROM procrastinate_jobs LIMIT 1")
    return "ok"


CHECKS = {"database": _check_database, "redis": _check_redis, "job_queue": _check_job_queue}


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: database, Redis and the job queue are reachable."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # any failure means not ready
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = "unavailable"
    failed = [name for name, state in results.items() if state == "unavailable"]
    if failed:
        return error_response(
            503,
            "not_ready",
            _("Not ready: %(failed)s unavailable.") % {"failed": ", ".join(failed)},
            details={"checks": results, "failed": failed},
        )
    return JsonResponse({"status": "ready", "checks": results})
