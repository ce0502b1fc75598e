"""The WebSocket message limit holds in the server, before a message is inflated.

The app refuses an inbound frame over WS_MAX_INBOUND_BYTES (1009), but only once
the server has handed it over, inflated: with permessage-deflate, 16 KB on the
wire were a 16 MiB message in the server's memory (uvicorn's default limit). The
Procfile's web command gives uvicorn the same limit, so it stops inflating there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from fakes.harness import procfile_argv
from tests.backend.web_process import web_process
from tests.conftest import make_user, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024


def test_the_web_command_limits_websocket_messages_as_the_app_does() -> None:
    argv = procfile_argv("web", {})
    assert argv[argv.index("--ws-max-size") + 1] == str(settings.WS_MAX_INBOUND_BYTES)
    override = procfile_argv("web", {"WS_MAX_INBOUND_BYTES": "1000"})
    assert override[override.index("--ws-max-size") + 1] == "1000"


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_compressed_16_mib_message_is_refused_before_it_is_inflated(tmp_path: Any) -> None:
    _, tokens = sign_in(make_user())
    with web_process(tmp_path) as server, httpx.Client(timeout=60) as client:
        ticket = client.post(
            f"{server.base_url}/api/v1/realtime/ticket",
            json={},
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        ).json()["ticket"]
        uri = f"ws://{server.address}/ws/v1/events?ticket={ticket}"
        with connect(uri, open_timeout=60, compression="deflate") as socket:
            socket.recv(timeout=60)  # the first frame: the socket is open and served
            before = peak_rss_mb(server.process.pid)
            socket.send(" " * (16 * MB))  # about 16 KB on the wire
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=60)
        grown = peak_rss_mb(server.process.pid) - before

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert grown < 8, f"the server's peak memory grew by {grown:.1f} MB"
