"""The harness's throwaway servers start even when the port `free_port()` chose is
taken before the server binds it (a busy machine); a restart keeps the port; and
`free_port()` never hands one port out twice in a process."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from fakes import harness
from fakes.harness import RedisServer

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


class _KernelOffering:
    """A socket whose `bind(("127.0.0.1", 0))` gets the next of `offers`, as the
    kernel may offer a port again once the probe socket that had it is closed."""

    def __init__(self, offers: list[int]) -> None:
        self.offers = offers
        self.port = 0

    def __call__(self, *args: object) -> _KernelOffering:
        return self

    def __enter__(self) -> _KernelOffering:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        self.port = self.offers.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_a_port_offered_again_is_not_handed_out_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "_handed_out", set())
    kernel = _KernelOffering([41197, 41197, 41197, 41203])
    monkeypatch.setattr(harness.socket, "socket", kernel)
    assert harness.free_port() == 41197
    assert harness.free_port() == 41203
    assert kernel.offers == []


@needs_redis
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


@needs_redis
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
