"""Idempotency-Key semantics (IETF draft), against PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.models import IdempotencyRecord
from tests.backend import conventions_api
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.urls("tests.backend.conventions_api")


@pytest.fixture(autouse=True)
def _reset_gate():
    conventions_api.gate["started"].clear()
    conventions_api.gate["release"].set()
    conventions_api.calls["create"] = 0
    yield
    conventions_api.gate["release"].set()


@pytest.mark.django_db
def test_same_key_same_body_replays_status_and_body(api: ApiClient) -> None:
    key = {"Idempotency-Key": "k-1"}
    first = api.post("/api/test/things", {"name": "abc"}, headers=key)
    second = api.post("/api/test/things", {"name": "abc"}, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert conventions_api.calls["create"] == 1


@pytest.mark.django_db
def test_same_key_different_body_is_422(api: ApiClient) -> None:
    key = {"Idempotency-Key": "k-2"}
    api.post("/api/test/things", {"name": "abc"}, headers=key)
    response = api.post("/api/test/things", {"name": "abd"}, headers=key)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert conventions_api.calls["create"] == 1


@pytest.mark.django_db
def test_without_key_every_request_runs(api: ApiClient) -> None:
    api.post("/api/test/things", {"name": "abc"})
    api.post("/api/test/things", {"name": "abc"})
    assert conventions_api.calls["create"] == 2
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db
def test_keys_are_scoped_to_the_caller() -> None:
    alice, bob = make_user("+84911000001"), make_user("+84911000002")
    key = {"Idempotency-Key": "shared-key"}
    a = ApiClient(token=sign_in(alice)[1].access_token)
    b = ApiClient(token=sign_in(bob)[1].access_token)
    first = a.post("/api/test/my-things", {"name": "abc"}, headers=key)
    second = b.post("/api/test/my-things", {"name": "abc"}, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert "Idempotent-Replayed" not in second.headers
    scopes = set(IdempotencyRecord.objects.values_list("scope", flat=True))
    assert scopes == {f"user:{alice.id}", f"user:{bob.id}"}


@pytest.mark.django_db
def test_replay_after_logout_is_refused_not_replayed() -> None:
    """Issue 13 #4: a revoked token repeating a request gets 401, not the stored answer."""
    user = make_user("+84911000003")
    _session, tokens = sign_in(user)
    client = ApiClient(token=tokens.access_token)
    key = {"Idempotency-Key": "after-logout"}
    first = client.post("/api/test/my-things", {"name": "abc"}, headers=key)
    assert first.status_code == 201
    assert client.post("/api/v1/auth/logout").status_code == 204

    replay = client.post("/api/test/my-things", {"name": "abc"}, headers=key)

    assert replay.status_code == 401
    assert "Idempotent-Replayed" not in replay.headers
    assert first.json()["id"] not in replay.content.decode()
    assert conventions_api.calls["create"] == 1


@pytest.mark.django_db
def test_unauthenticated_request_with_a_key_claims_nothing(api: ApiClient) -> None:
    response = api.post("/api/test/my-things", {"name": "abc"}, headers={"Idempotency-Key": "anon"})
    assert response.status_code == 401
    assert IdempotencyRecord.objects.count() == 0
    assert conventions_api.calls["create"] == 0


@pytest.mark.django_db
def test_a_keyed_request_reads_its_session_once() -> None:
    """Authenticating before the claim does not authenticate twice."""
    user = make_user("+84911000004")
    client = ApiClient(token=sign_in(user)[1].access_token)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/test/my-things", {"name": "abc"}, headers={"Idempotency-Key": "once"}
        )
    assert response.status_code == 201
    session_reads = [
        q for q in queries.captured_queries if 'FROM "accounts_devicesession"' in q["sql"]
    ]
    assert len(session_reads) == 1


@pytest.mark.django_db
def test_server_error_releases_the_key(api: ApiClient) -> None:
    key = {"Idempotency-Key": "k-3"}
    assert api.post("/api/test/things-failing", {"name": "abc"}, headers=key).status_code == 503
    assert api.post("/api/test/things-failing", {"name": "abc"}, headers=key).status_code == 503
    assert conventions_api.calls["create"] == 2
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db
def test_validation_error_is_kept_and_replayed(api: ApiClient) -> None:
    key = {"Idempotency-Key": "k-4"}
    first = api.post("/api/test/things", {"name": "a"}, headers=key)
    second = api.post("/api/test/things", {"name": "a"}, headers=key)
    assert first.status_code == second.status_code == 422
    assert second.headers["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_expired_key_runs_again(api: ApiClient) -> None:
    key = {"Idempotency-Key": "k-5"}
    api.post("/api/test/things", {"name": "abc"}, headers=key)
    IdempotencyRecord.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    again = api.post("/api/test/things", {"name": "abc"}, headers=key)
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert conventions_api.calls["create"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", "x" * 256, "ключ"])
def test_malformed_key_is_400(api: ApiClient, bad: str) -> None:
    response = api.post("/api/test/things", {"name": "abc"}, headers={"Idempotency-Key": bad})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert conventions_api.calls["create"] == 0


def test_the_readme_gives_the_keys_the_server_takes() -> None:
    from pathlib import Path

    from django.conf import settings

    from backend.idempotency import IDEMPOTENCY_KEY

    readme = (Path(settings.BASE_DIR) / "mobile_api_docs" / "README.md").read_text()
    said = f"A key is 1 to {IDEMPOTENCY_KEY.max_key_length} printable ASCII characters"
    assert said in " ".join(readme.split())


@pytest.mark.django_db(transaction=True)
def test_concurrent_twin_gets_409_then_replay() -> None:
    """Two requests with one key at once: one runs, its twin is told to retry."""
    key = {"Idempotency-Key": "k-concurrent"}
    conventions_api.gate["release"].clear()
    results: dict[str, object] = {}

    def first_request() -> None:
        results["first"] = ApiClient().post("/api/test/things", {"name": "abc"}, headers=key)
        connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    assert conventions_api.gate["started"].wait(timeout=10)
    twin = ApiClient().post("/api/test/things", {"name": "abc"}, headers=key)
    conventions_api.gate["release"].set()
    thread.join(timeout=10)

    assert twin.status_code == 409
    assert twin.json()["code"] == "idempotency_request_in_flight"
    first = results["first"]
    assert first.status_code == 201  # type: ignore[attr-defined]
    replay = ApiClient().post("/api/test/things", {"name": "abc"}, headers=key)
    assert replay.status_code == 201
    assert replay.json() == first.json()  # type: ignore[attr-defined]
    assert conventions_api.calls["create"] == 1


@pytest.mark.django_db(transaction=True)
def test_twin_claims_a_key_released_after_its_insert_failed() -> None:
    """The first request's 503 releases the key between the twin's failed insert and
    its read of the record: the twin claims the key and runs, it never gets a 404."""
    key = {"Idempotency-Key": "k-released"}
    conventions_api.gate["release"].clear()
    twin_insert_failed, first_done = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first_request() -> None:
        try:
            results["first"] = ApiClient().post(
                "/api/test/things-flaky", {"name": "abc"}, headers=key
            )
        finally:
            first_done.set()
            connection.close()

    def hold_twin(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "idempotencyrecord" not in sql:
            return execute(sql, params, many, context)
        if sql.startswith("INSERT"):
            try:
                return execute(sql, params, many, context)
            finally:
                twin_insert_failed.set()
        if sql.startswith("SELECT"):
            # Read the record only once the first request has released it.
            assert first_done.wait(timeout=10)
        return execute(sql, params, many, context)

    def twin_request() -> None:
        try:
            with connection.execute_wrapper(hold_twin):
                results["twin"] = ApiClient().post(
                    "/api/test/things-flaky", {"name": "abc"}, headers=key
                )
        finally:
            connection.close()

    first = threading.Thread(target=first_request)
    first.start()
    assert conventions_api.gate["started"].wait(timeout=10)  # the key is claimed
    twin = threading.Thread(target=twin_request)
    twin.start()
    assert twin_insert_failed.wait(timeout=10)
    conventions_api.gate["release"].set()
    first.join(timeout=10)
    twin.join(timeout=10)

    assert results["first"].status_code == 503  # type: ignore[attr-defined]
    assert results["twin"].status_code == 201  # type: ignore[attr-defined]
    assert conventions_api.calls["create"] == 2
    replay = ApiClient().post("/api/test/things-flaky", {"name": "abc"}, headers=key)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == results["twin"].json()  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_key_that_keeps_changing_hands_is_in_flight(api: ApiClient) -> None:
    """Each insert fails and each read finds the record gone: bounded, then 409."""
    from django.db import IntegrityError

    from backend import idempotency

    inserts: list[str] = []

    def always_taken(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if sql.startswith("INSERT") and "idempotencyrecord" in sql:
            inserts.append(sql)
            raise IntegrityError("duplicate key value violates unique constraint")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(always_taken):
        response = api.post("/api/test/things", {"name": "abc"}, headers={"Idempotency-Key": "k-x"})

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_request_in_flight"
    assert len(inserts) == idempotency.CLAIM_ATTEMPTS
    assert conventions_api.calls["create"] == 0


@pytest.mark.django_db(transaction=True)
def test_abandoned_in_flight_record_is_taken_over(api: ApiClient, settings) -> None:
    IdempotencyRecord.objects.create(
        scope="ip:127.0.0.1",
        key="k-crashed",
        fingerprint="0" * 64,
        locked_until=timezone.now() - dt.timedelta(seconds=1),
        expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    response = api.post(
        "/api/test/things", {"name": "abc"}, headers={"Idempotency-Key": "k-crashed"}
    )
    assert response.status_code == 201
    assert IdempotencyRecord.objects.get(key="k-crashed").state == "completed"


@pytest.mark.django_db
def test_purge_removes_only_expired_records() -> None:
    from backend.idempotency import purge_expired

    now = timezone.now()
    for key, expires in [
        ("old", now - dt.timedelta(seconds=1)),
        ("new", now + dt.timedelta(hours=1)),
    ]:
        IdempotencyRecord.objects.create(
            scope="ip:1", key=key, fingerprint="f", locked_until=now, expires_at=expires
        )
    assert purge_expired() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db
def test_database_down_while_claiming_the_key_is_the_documented_503(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_down(*args: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr("backend.idempotency._claim", database_down)

    response = api.post("/api/test/things", {"name": "abc"}, headers={"Idempotency-Key": "k-db"})

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert conventions_api.calls["create"] == 0
