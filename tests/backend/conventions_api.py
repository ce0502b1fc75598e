"""A small API built with the project's conventions, to test them in isolation.

Mounted in front of the real URLs by `@pytest.mark.urls(...)`; never part of the app.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg_pool
import redis.exceptions
from django.db import OperationalError, connection, transaction
from django.urls import path
from ninja import Field, Query, Router, Schema, Status

from auth.bearer import bearer
from auth.models import User
from backend.api import build_api
from backend.errors import Conflict, ErrorOut, PermissionDenied, RateLimited, ServiceUnavailable
from backend.idempotency import idempotent
from backend.pagination import PageParams, page_of, paginate
from backend.urls import urlpatterns as real_urlpatterns

router = Router()
# Lets a test hold a request in the middle of its handler.
gate: dict[str, threading.Event] = {"started": threading.Event(), "release": threading.Event()}
gate["release"].set()
calls: dict[str, int] = {"create": 0}


class ThingIn(Schema):
    name: str = Field(..., min_length=2, max_length=20)
    count: int = Field(1, ge=1, le=10)


class ThingOut(Schema):
    id: str
    name: str
    count: int


class UserOut(Schema):
    phone: str


@router.post("/things", response={201: ThingOut})
@idempotent
def create_thing(request: Any, payload: ThingIn) -> Status[dict[str, Any]]:
    calls["create"] += 1
    gate["started"].set()
    gate["release"].wait(timeout=10)
    return Status(201, {"id": uuid.uuid4().hex, "name": payload.name, "count": payload.count})


@router.post("/my-things", auth=bearer, response={201: ThingOut, 401: ErrorOut})
@idempotent
def create_my_thing(request: Any, payload: ThingIn) -> Status[dict[str, Any]]:
    calls["create"] += 1
    return Status(201, {"id": uuid.uuid4().hex, "name": payload.name, "count": payload.count})


@router.post("/things-failing", response={201: ThingOut})
@idempotent
def create_failing(request: Any, payload: ThingIn) -> Any:
    calls["create"] += 1
    raise ServiceUnavailable()


@router.post("/things-flaky", response={201: ThingOut})
@idempotent
def create_flaky(request: Any, payload: ThingIn) -> Status[dict[str, Any]]:
    """The first call fails with 503 (an answer that is not kept), later ones create."""
    calls["create"] += 1
    first = calls["create"] == 1
    gate["started"].set()
    gate["release"].wait(timeout=10)
    if first:
        raise ServiceUnavailable()
    return Status(201, {"id": uuid.uuid4().hex, "name": payload.name, "count": payload.count})


@router.get("/private", auth=bearer)
def private(request: Any) -> dict[str, str]:
    return {"phone": request.auth.phone}


@router.get("/forbidden")
def forbidden(request: Any) -> None:
    raise PermissionDenied()


@router.get("/conflict")
def conflict(request: Any) -> None:
    raise Conflict("thing_busy", "Busy")


@router.get("/limited")
def limited(request: Any) -> None:
    raise RateLimited(42)


@router.get("/unavailable")
def unavailable(request: Any) -> None:
    raise ServiceUnavailable()


@router.get("/crash")
def crash(request: Any) -> None:
    raise RuntimeError("secret internals: password=hunter2")


@router.get("/db-refuses")
def db_refuses(request: Any) -> None:
    # A value PostgreSQL cannot take that no validation stopped (psycopg refuses NUL).
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text", ["a\x00b"])


@router.get("/db-down")
def db_down(request: Any) -> None:
    raise OperationalError("connection to server at 127.0.0.1 failed")


@router.get("/pool-timeout")
def pool_timeout(request: Any) -> None:
    # What psycopg's pool raises when no connection comes (unwrapped, as a direct user
    # of psycopg, like the stream's reader, sees it).
    raise psycopg_pool.PoolTimeout("couldn't get a connection after 3.00 sec")


@router.get("/db-down-while-handling")
def db_down_while_handling(request: Any) -> None:
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError as exc:
        raise RuntimeError("could not verify the signature") from exc


@router.get("/redis-down")
def redis_down(request: Any) -> None:
    raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1")


@router.get("/users", response=page_of(UserOut))
def users(request: Any, params: Query[PageParams]) -> dict[str, Any]:
    rows, next_cursor = paginate(User.objects.all(), params, ("-date_joined", "-id"))
    return {"items": rows, "next_cursor": next_cursor}


@router.post("/atomic-fail")
def atomic_fail(request: Any) -> None:
    with transaction.atomic():
        User.objects.create_user("+84987000111", "x")
        raise Conflict()


test_api = build_api(title="conventions", urls_namespace="conventions-test")
test_api.add_router("/", router)

urlpatterns = [path("api/test/", test_api.urls), *real_urlpatterns]
