"""The asynchronous FCM sender against the loopback fake FCM v1 server: firebase-admin's
error mapping for every answer, the shared access token, and the limits."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from firebase_admin import exceptions, messaging
from google.auth import _helpers

from fakes.fcm import FakeFcmServer, Outcome
from notifications.fcm import FcmGateway, SendResult
from notifications.payload import Push


def push(token: str, notification_id: int = 1) -> Push:
    return Push(
        token=token,
        title="Hồ sơ đã được tiếp nhận",
        body="Kết quả dự kiến ngày 01/12/2026.",
        data={"notification_id": str(notification_id)},
        collapse_id="dossier-1",
        urgent=False,
        badge=1,
        channel_id="dossier_updates",
    )


def send_requests(fcm: FakeFcmServer) -> list[dict[str, Any]]:
    """Every send request the fake received, answered or faulted."""
    with fcm.lock:
        return [entry for entry in fcm.requests if entry["path"].endswith("messages:send")]


def send_in_threads(batches: list[list[Push]]) -> list[list[SendResult]]:
    """One gateway call per thread, all started at once (as a worker's job threads)."""
    start = threading.Barrier(len(batches))

    def one(batch: list[Push]) -> list[SendResult]:
        gateway = FcmGateway()
        start.wait(timeout=10)
        return gateway.send(batch)

    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        return list(pool.map(one, batches))


# --- firebase-admin's error mapping, over the new transport ------------------------------


@pytest.mark.parametrize(
    ("answer", "exception_type", "code", "status"),
    [
        ("UNREGISTERED", messaging.UnregisteredError, "UNREGISTERED", 404),
        ("SENDER_ID_MISMATCH", messaging.SenderIdMismatchError, "SENDER_ID_MISMATCH", 403),
        ("INVALID_ARGUMENT", exceptions.InvalidArgumentError, "INVALID_ARGUMENT", 400),
        ("QUOTA_EXCEEDED", messaging.QuotaExceededError, "QUOTA_EXCEEDED", 429),
        ("UNAVAILABLE", exceptions.UnavailableError, "UNAVAILABLE", 503),
        ("INTERNAL", exceptions.InternalError, "INTERNAL", 500),
    ],
)
def test_each_fcm_answer_becomes_firebase_admins_exception(
    fcm: FakeFcmServer, answer: str, exception_type: type[Exception], code: str, status: int
) -> None:
    fcm.script("tok-answer", Outcome(answer, retry_after=7 if answer == "QUOTA_EXCEEDED" else None))
    gateway = FcmGateway()

    [result] = gateway.send([push("tok-answer")])

    assert (result.error_code, result.http_status) == (code, status)
    assert result.retry_after == (7.0 if answer == "QUOTA_EXCEEDED" else None)
    assert result.message_id == ""
    assert fcm.attempts_for("tok-answer") == [answer]
    fcm.script("tok-answer", answer)
    [response] = gateway.sender.send_each([{"token": "tok-answer"}], concurrency=1)
    assert type(response.exception) is exception_type
    assert response.exception.http_response.status_code == status  # type: ignore[attr-defined]


def test_answers_come_back_in_the_order_of_the_pushes(fcm: FakeFcmServer) -> None:
    fcm.script("tok-3", "UNAVAILABLE")
    pushes = [push(f"tok-{n}", n) for n in range(6)] + [push("UNREGISTERED-phone", 6)]

    results = FcmGateway().send(pushes)

    names = {item["message"]["data"]["notification_id"]: item["name"] for item in fcm.sent}
    assert [r.message_id for r in results] == [names.get(str(n), "") for n in range(len(pushes))]
    assert [r.error_code for r in results] == ["", "", "", "UNAVAILABLE", "", "", "UNREGISTERED"]


def test_the_wire_body_is_firebase_admins_encoding(fcm: FakeFcmServer) -> None:
    from notifications.payload import build_message, encode

    FcmGateway().send([push("tok-wire")])

    [message] = fcm.sent_to("tok-wire")
    assert message == encode(build_message(push("tok-wire")))
    [request] = [entry for entry in fcm.requests if entry["path"].endswith("messages:send")]
    assert request["status"] == 200


def test_an_html_error_page_maps_by_its_http_status(fcm: FakeFcmServer) -> None:
    fcm.fail_next("error", status=503, path_contains="messages:send")  # a proxy's page
    fcm.fail_next("error", status=502, path_contains="messages:send")

    first, second = FcmGateway().send([push("tok-html-1")]), FcmGateway().send([push("tok-html-2")])

    assert (first[0].error_code, first[0].http_status) == ("UNAVAILABLE", 503)
    assert (second[0].error_code, second[0].http_status) == ("UNKNOWN", 502)
    assert fcm.sent == []


def test_a_success_that_is_not_fcms_answer_is_unknown(fcm: FakeFcmServer) -> None:
    fcm.fail_next("not_json", path_contains="messages:send")

    [result] = FcmGateway().send([push("tok-not-json")])

    assert (result.ok, result.error_code) == (False, "UNKNOWN")


def test_a_connection_closed_without_an_answer_is_unavailable(fcm: FakeFcmServer) -> None:
    fcm.fail_next("drop", path_contains="messages:send")

    [result] = FcmGateway().send([push("tok-drop")])

    assert (result.error_code, result.permanent) == ("UNAVAILABLE", False)
    assert len(send_requests(fcm)) == 1  # it may have been handled: not sent again


def test_an_answer_later_than_the_timeout_is_deadline_exceeded_and_not_repeated(
    fcm: FakeFcmServer, settings: Any
) -> None:
    settings.FCM_TIMEOUT_SECONDS = 1
    fcm.hang_seconds = 5
    fcm.fail_next("lose_answer", path_contains="messages:send")  # FCM took it, then silence

    [result] = FcmGateway().send([push("tok-late")])

    assert (result.error_code, result.permanent) == ("DEADLINE_EXCEEDED", False)
    assert len(send_requests(fcm)) == 1
    # The fake's log says FCM took it and the answer was lost (the bench counts these).
    assert [(a["outcome"], a.get("answer_lost")) for a in fcm.attempts] == [("ok", True)]
    assert fcm.stats()["answers_lost"] == 1


def test_no_server_listening_is_unavailable(fcm: FakeFcmServer, settings: Any) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        settings.FCM_API_BASE = f"http://127.0.0.1:{probe.getsockname()[1]}"

    [result] = FcmGateway().send([push("tok-nobody")])

    assert (result.error_code, result.permanent) == ("UNAVAILABLE", False)
    assert fcm.token_requests == 1  # the token still comes from the fake's token endpoint
    assert fcm.attempts == []


# --- the access token ---------------------------------------------------------------------


def test_concurrent_send_jobs_share_one_token_fetch(fcm: FakeFcmServer) -> None:
    batches = [[push(f"tok-{job}-{n}", n) for n in range(20)] for job in range(6)]

    answers = send_in_threads(batches)

    assert all(result.ok for results in answers for result in results)
    assert len(fcm.sent) == 120
    assert fcm.token_requests == 1


def test_an_expired_token_is_fetched_again_once_for_all_sends(fcm: FakeFcmServer) -> None:
    gateway = FcmGateway()
    gateway.send([push("tok-first")])
    credential = gateway.sender.token.credential
    first = credential.token
    credential.expiry = _helpers.utcnow() - dt.timedelta(seconds=1)  # the hour has passed

    answers = send_in_threads([[push(f"tok-{job}-{n}", n) for n in range(10)] for job in range(6)])

    assert all(result.ok for results in answers for result in results)
    assert fcm.token_requests == 2
    assert credential.token != first


def test_a_token_near_its_end_is_renewed_before_it_lapses(fcm: FakeFcmServer) -> None:
    gateway = FcmGateway()
    gateway.send([push("tok-first")])
    credential = gateway.sender.token.credential
    credential.expiry = _helpers.utcnow() + dt.timedelta(minutes=2)  # google-auth's "stale"

    gateway.send([push("tok-second")])
    gateway.send([push("tok-third")])

    assert fcm.token_requests == 2
    assert len(fcm.sent) == 3


def test_a_401_renews_the_token_once_and_repeats_the_request(fcm: FakeFcmServer) -> None:
    gateway = FcmGateway()
    gateway.send([push("tok-first")])
    fcm.fail_next("error", status=401, path_contains="messages:send")  # the token was revoked

    [result] = gateway.send([push("tok-after-401")])

    assert result.ok
    assert fcm.token_requests == 2
    assert len(fcm.sent_to("tok-after-401")) == 1
    assert [entry["status"] for entry in send_requests(fcm)] == [200, 401, 200]


def test_a_401_that_persists_is_unauthenticated_after_one_renewal(fcm: FakeFcmServer) -> None:
    FcmGateway().send([push("tok-first")])
    fcm.fail_next("error", status=401, times=2, path_contains="messages:send")

    [result] = FcmGateway().send([push("tok-refused")])

    assert (result.error_code, result.http_status, result.permanent) == (
        "UNAUTHENTICATED",
        401,
        False,
    )
    assert fcm.token_requests == 2
    assert [entry["status"] for entry in send_requests(fcm)] == [200, 401, 401]


def test_a_token_endpoint_refusal_fails_the_batch_for_now_without_sending(
    fcm: FakeFcmServer,
) -> None:
    fcm.fail_next("error", status=400, code="invalid_grant", path_contains="/token")

    results = FcmGateway().send([push("tok-a"), push("tok-b")])

    assert [(r.error_code, r.permanent) for r in results] == [("UNKNOWN", False)] * 2
    assert "access token" in results[0].error_message
    assert send_requests(fcm) == []
    assert [r.ok for r in FcmGateway().send([push("tok-a")])] == [True]  # fetched again


# --- limits ---------------------------------------------------------------------------------


def test_fcm_concurrency_bounds_the_requests_of_one_call(fcm: FakeFcmServer, settings: Any) -> None:
    settings.FCM_CONCURRENCY = 4
    fcm.delay = 0.05

    results = FcmGateway().send([push(f"tok-{n}", n) for n in range(16)])

    assert all(result.ok for result in results)
    assert fcm.peak_concurrency == 4


def test_fcm_max_connections_bounds_the_whole_process(fcm: FakeFcmServer, settings: Any) -> None:
    settings.FCM_CONCURRENCY = 10
    settings.FCM_MAX_CONNECTIONS = 3
    fcm.delay = 0.05

    answers = send_in_threads([[push(f"tok-{job}-{n}", n) for n in range(6)] for job in range(2)])

    assert all(result.ok for results in answers for result in results)
    assert fcm.peak_concurrency == 3


def test_worker_warm_up_builds_the_client_without_sending_anything(fcm, settings) -> None:
    from backend.management.commands.worker import warm_up
    from notifications import fcm_sender

    settings.FCM_MAX_CONNECTIONS = 7  # a configuration no other test built a sender for
    key_part = (settings.FCM_CREDENTIALS_FILE, settings.FCM_API_BASE)
    assert not any(key[:1] + key[2:3] == key_part for key in fcm_sender._senders)

    warm_up()  # settings.WORKER_WARM_UP: notifications.fcm.warm_up

    assert any(key[:1] + key[2:3] == key_part and key[-1] == 7 for key in fcm_sender._senders)
    assert send_requests(fcm) == []
    assert fcm.token_requests == 0
    # The first push then uses what was built: one sender for the configuration.
    senders = len(fcm_sender._senders)
    [result] = FcmGateway().send([push("tok-warm")])
    assert result.ok
    assert len(fcm_sender._senders) == senders


def test_a_failing_warm_up_is_logged_and_the_worker_goes_on(settings, caplog) -> None:
    from backend.management.commands.worker import warm_up

    settings.PUSH_BACKEND = "fcm"
    settings.FCM_CREDENTIALS_FILE = "/nonexistent/service-account.json"

    warm_up()

    [record] = [r for r in caplog.records if "warm-up" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert "notifications.fcm.warm_up" in record.getMessage()
