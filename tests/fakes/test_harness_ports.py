"""The harness's throwaway servers start even when the port `free_port()` chose is
taken before the server binds it (a busy machine); a restart keeps the port."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from fakes.harness import RedisServer

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


def test_a_server_whose_chosen_port_was_taken_starts_on_a_fresh_one(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    chosen = server.port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", chosen))
        squatter.listen(1)
        server.start()
        try:
            assert server.port != chosen
            assert server._pong()
        finally:
            server.stop()


def test_a_restarted_server_keeps_its_port(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    port = server.port
    server.stop()
    server.start()
    try:
        assert server.port == port
        assert server._pong()
    finally:
        server.stop()
