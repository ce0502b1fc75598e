"""The fake FCM server's fault mode and request log, through the real firebase-admin code."""

from __future__ import annotations

import collections
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes.fcm import FAULT_CODES, FakeFcmServer, backend_env
from notifications.fcm import FcmGateway
from notifications.payload import Push

SEED = 8
FAULTS = 0.05


@pytest.fixture
def fake_fcm() -> Iterator[FakeFcmServer]:
    """Overrides the conftest's fake: this one fails 5 % of the sends, seeded."""
    with FakeFcmServer(project_id="citizen-test", faults=FAULTS, seed=SEED) as server:
        yield server


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


def expected_outcomes(sends: int) -> collections.Counter[str]:
    """The outcomes the seeded generator gives `sends` sends, whatever their order."""
    draws = random.Random(SEED)  # nosec B311 # replays the fake's draws
    outcomes: collections.Counter[str] = collections.Counter()
    for _ in range(sends):
        fault = draws.random() < FAULTS
        outcomes[draws.choice(FAULT_CODES) if fault else "ok"] += 1
    return outcomes


def test_faults_answer_a_seeded_share_of_sends_with_429_or_503(fcm: FakeFcmServer) -> None:
    results = FcmGateway().send([push(f"tok-{n}", n) for n in range(400)])

    expected = expected_outcomes(400)
    assert set(expected) == {"ok", "QUOTA_EXCEEDED", "UNAVAILABLE"}  # the seed draws both
    assert collections.Counter(a["outcome"] for a in fcm.attempts) == expected
    assert collections.Counter(r.error_code or "ok" for r in results) == expected
    for result in results:
        if result.error_code == "QUOTA_EXCEEDED":
            assert (result.http_status, result.retry_after, result.throttled) == (429, 1.0, True)
        elif result.error_code == "UNAVAILABLE":
            assert (result.http_status, result.retry_after, result.permanent) == (503, None, False)
        else:
            assert result.ok
    assert len(fcm.sent) == expected["ok"]


def test_scripted_and_named_outcomes_come_before_faults(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeFcmServer(project_id="citizen-test", faults=1.0, seed=SEED) as server:
        server.script("tok-scripted", "ok")
        monkeypatch.setattr(
            "google.auth._regional_access_boundary_utils.get_service_account_rab_endpoint",
            server.rab_endpoint,
        )
        settings.PUSH_BACKEND = "fcm"
        settings.FCM_CREDENTIALS_FILE = str(server.write_credentials(tmp_path / "sa.json"))
        settings.FCM_PROJECT_ID = ""
        settings.FCM_API_BASE = server.base_url

        scripted, named, drawn = FcmGateway().send(
            [push("tok-scripted"), push("UNREGISTERED-phone"), push("tok-drawn")]
        )

    assert scripted.ok
    assert named.error_code == "UNREGISTERED"
    assert drawn.error_code in FAULT_CODES


def test_the_log_is_readable_over_http_and_can_be_reset(fcm: FakeFcmServer) -> None:
    FcmGateway().send([push(f"tok-{n}", n) for n in range(60)])
    expected = expected_outcomes(60)

    stats = httpx.get(f"{fcm.base_url}/_fake/stats").json()
    log = httpx.get(f"{fcm.base_url}/_fake/log").json()["attempts"]

    assert stats["requests"] == 60
    assert stats["accepted"] == expected["ok"]
    assert stats["outcomes"] == dict(expected)
    assert stats["token_requests"] == 1  # one fetch, shared by the concurrent first sends
    assert 1 <= stats["peak_concurrency"] <= 50  # FCM_CONCURRENCY sends at a time at most
    assert stats["first_at"] <= stats["last_at"]
    assert sorted((a["token"], a["message"]["data"]["notification_id"]) for a in log) == sorted(
        (f"tok-{n}", str(n)) for n in range(60)
    )

    assert httpx.post(f"{fcm.base_url}/_fake/reset").status_code == 200
    stats = httpx.get(f"{fcm.base_url}/_fake/stats").json()
    assert (stats["requests"], stats["accepted"], stats["peak_concurrency"]) == (0, 0, 0)
    assert httpx.get(f"{fcm.base_url}/_fake/log").json() == {"attempts": [], "requests": []}


def test_backend_env_points_firebase_admin_at_the_fake(tmp_path: Path) -> None:
    env = backend_env("http://127.0.0.1:9099", tmp_path / "sa.json")

    assert env["PUSH_BACKEND"] == "fcm"
    assert env["FCM_API_BASE"] == "http://127.0.0.1:9099"
    assert env["FCM_CREDENTIALS_FILE"].endswith("sa.json")
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://127.0.0.1:9"  # Google hosts: nowhere
    assert "127.0.0.1" in env["NO_PROXY"]
