"""The plumbing every fake shares (fakes/server.py) and the harness (fakes/harness.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakes.carrier import API_KEY, FakeCarrier
from fakes.harness import FakeProcess, Process, ProcessExited, child_env, procfile_argv, wait_until
from fakes.server import FakeServer, Fault, Request, Response, json_response
from fakes.sms_gateway import PATH as SMS_PATH


class EchoFake(FakeServer):
    """The smallest fake: answers every request with its method and path."""

    name = "echo"

    def handle(self, request: Request) -> Response | None:
        return json_response(200, {"method": request.method, "path": request.path})


@pytest.fixture
def echo() -> Iterator[EchoFake]:
    with EchoFake() as fake:
        yield fake


def test_requests_are_logged_and_served_over_http(echo: EchoFake) -> None:
    answer = httpx.post(f"{echo.base_url}/v1/things?x=1", json={"a": 1})

    assert answer.json() == {"method": "POST", "path": "/v1/things"}
    log = httpx.get(f"{echo.base_url}/_fake/log").json()["requests"]
    assert [(e["method"], e["path"], e["body"], e["status"]) for e in log] == [
        ("POST", "/v1/things", {"a": 1}, 200)
    ]
    assert httpx.get(f"{echo.base_url}/_fake/stats").json()["requests"] == 1
    assert httpx.get(f"{echo.base_url}/_fake/ready").json() == {"name": "echo", "ready": True}

    assert httpx.post(f"{echo.base_url}/_fake/reset").status_code == 200
    assert httpx.get(f"{echo.base_url}/_fake/log").json() == {"requests": []}


def test_next_faults_are_served_in_order_to_matching_paths(echo: EchoFake) -> None:
    echo.fail_next("error", status=429, code="RATE_LIMITED", path_contains="/v1/")
    echo.fail_next("error", status=502)

    assert httpx.get(f"{echo.base_url}/other").status_code == 200  # no match: untouched
    limited = httpx.get(f"{echo.base_url}/v1/x")
    assert (limited.status_code, limited.json()) == (
        429,
        {"error": {"code": "RATE_LIMITED", "message": "RATE_LIMITED"}},
    )
    page = httpx.get(f"{echo.base_url}/v1/x")
    assert (page.status_code, page.text) == (502, "<html>Bad gateway</html>")
    assert httpx.get(f"{echo.base_url}/v1/x").status_code == 200  # faults used up


def test_fault_mode_lasts_until_cleared_and_not_json_is_a_200(echo: EchoFake) -> None:
    echo.fault_mode = Fault("not_json")
    for _ in range(2):
        answer = httpx.get(f"{echo.base_url}/x")
        assert (answer.status_code, answer.text) == (200, "<html>maintenance</html>")
    echo.fault_mode = None
    assert httpx.get(f"{echo.base_url}/x").json()["path"] == "/x"


def test_drop_closes_the_connection_without_an_answer(echo: EchoFake) -> None:
    echo.fail_next("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{echo.base_url}/x")
    assert [e["status"] for e in echo.requests] == [None]


def test_faults_are_set_over_http(echo: EchoFake) -> None:
    body = {"next": [{"kind": "error", "status": 503, "code": "DOWN"}], "delay": 0}
    assert httpx.post(f"{echo.base_url}/_fake/faults", json=body).json() == {"pending": 1}
    assert httpx.get(f"{echo.base_url}/x").status_code == 503

    mode = {"mode": {"kind": "error", "status": 500}}
    httpx.post(f"{echo.base_url}/_fake/faults", json=mode).raise_for_status()
    assert httpx.get(f"{echo.base_url}/x").status_code == 500
    httpx.post(f"{echo.base_url}/_fake/faults", json={"mode": None}).raise_for_status()
    assert httpx.get(f"{echo.base_url}/x").status_code == 200

    bad = httpx.post(f"{echo.base_url}/_fake/faults", json={"next": [{"kind": "explode"}]})
    assert bad.status_code == 400
    half_bad = {"next": [{"kind": "error"}], "mode": {"kind": "explode"}}
    assert httpx.post(f"{echo.base_url}/_fake/faults", json=half_bad).status_code == 400
    assert httpx.get(f"{echo.base_url}/x").status_code == 200  # nothing was queued
    assert echo.fault_mode is None


def test_a_lost_answer_is_handled_then_never_sent() -> None:
    with FakeCarrier() as carrier:
        carrier.hang_seconds = 5
        carrier.fail_next("hang_after_create")
        order = {
            "order_number": "N1",
            "reference": "R1",
            "sender": {},
            "receiver": {"address": {"commune_code": "00070"}},
            "cod_amount": 0,
        }
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{carrier.url}/v1/orders", json=order, headers={"X-API-Key": API_KEY}, timeout=0.3
            )
        assert list(carrier.orders) == ["N1"]  # the carrier acted; only the answer was lost


def test_stop_releases_a_held_answer_at_once() -> None:
    echo = EchoFake().start()
    echo.delay = 30.0
    process_client = httpx.Client(timeout=60)
    try:
        results: list[BaseException | int] = []

        def call() -> None:
            try:
                results.append(process_client.get(f"{echo.base_url}/x").status_code)
            except httpx.HTTPError as exc:
                results.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        wait_until(lambda: echo.held == 1, timeout=5, what="the request held")
        echo.stop()
        thread.join(timeout=5)
        assert not thread.is_alive()
        assert results == [200]  # released by the stop, answered, not left hanging 30 s
    finally:
        process_client.close()


@pytest.mark.parametrize(
    ("module", "probe"),
    [
        ("fakes.sms_gateway", SMS_PATH),
        ("fakes.carrier", "/v1/orders/EB1VN"),
        ("fakes.fcm", "/x"),
        ("fakes.payment_gateway", "/national/api/v1/transactions"),
        ("fakes.identity_provider", "/token"),
        ("fakes.business_registry", "/enterprises/0100109106"),
    ],
)
def test_each_fake_runs_as_its_own_process(tmp_path: Path, module: str, probe: str) -> None:
    extra = ("--credentials", str(tmp_path / "sa.json")) if module == "fakes.fcm" else ()
    with FakeProcess(module, *extra, "--quiet", log_dir=tmp_path) as fake:
        assert fake.port > 0
        answer = httpx.post(f"{fake.base_url}{probe}", json={}, timeout=5)
        assert answer.status_code in {200, 401, 404}
        assert answer.headers["content-type"].startswith("application/json")
        assert fake.log()["requests"][0]["path"] == probe
        fake.set_faults([{"kind": "error", "status": 503}])
        assert httpx.post(f"{fake.base_url}{probe}", json={}, timeout=5).status_code == 503
        fake.reset()
        assert fake.log()["requests"] == []
    assert fake.process.exit_status() is not None


def test_a_process_that_exits_fails_its_start_at_once(tmp_path: Path) -> None:
    process = Process(
        "broken",
        [*procfile_argv("worker", {})[:1], "-c", "raise SystemExit(3)"],
        env=child_env(),
        log_dir=tmp_path,
        ready=lambda: False,
    )
    with pytest.raises(ProcessExited, match="broken exited"):
        process.start(timeout=30)
    assert process.exit_status() == 3
