"""Transport limits of a real `nmt serve` (uvicorn, h11): request heads are bounded in size and
time, bodies in time, idle connections close, connections are limited, and X-Forwarded-For is
not trusted unless a proxy is configured, so it cannot pick a fresh rate-limit window."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.service.conftest import _start_server, stop_server

WAIT_S = 10  # far beyond every deadline below (1 s); only a hung connection reaches it


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    proc, url = _start_server(
        tiny_bundle, log_path, "--max-header-bytes", "4096", "--keepalive-s", "1",
        "--body-timeout-s", "1", "--max-connections", "3",
        env={"NMT_RATE_LIMIT_PER_MINUTE": "3"})
    yield url
    stop_server(proc)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=WAIT_S)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def test_a_100_kb_header_is_refused(server: str) -> None:
    with _connect(server) as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 100_000
                         + b"\r\n\r\n")
        except OSError:  # the server may close before all of it is sent
            pass
        answer = _read_until_closed(sock)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), answer[:200]
    assert httpx.get(f"{server}/health", headers={"X-Small": "a" * 1000}).status_code == 200


def test_a_slow_body_is_cut_with_408(server: str) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100\r\n\r\n" + b'{"texts": [')
        answer = _read_until_closed(sock)  # the server closes after its answer
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"NMT_BODY_TIMEOUT_S" in body


def test_idle_keep_alive_connections_are_closed(server: str) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}')


@pytest.mark.parametrize("sent", [b"", b"GET /health HTTP/1.1\r\nHo"], ids=["nothing", "half"])
def test_a_request_head_that_never_completes_is_closed(server: str, sent: bytes) -> None:
    with _connect(server) as sock:
        sock.sendall(sent)
        assert _read_until_closed(sock) == b""


def test_connections_beyond_the_limit_get_503(server: str) -> None:
    idle = [_connect(server) for _ in range(3)]
    try:
        r = httpx.get(f"{server}/health")
        assert r.status_code == 503
    finally:
        for sock in idle:
            sock.close()


def test_forwarded_for_does_not_open_new_rate_windows(server: str) -> None:
    statuses = [httpx.post(f"{server}/detect", json={"q": "Hund"},
                           headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
