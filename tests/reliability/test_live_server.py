"""A real `nmt serve` (uvicorn): the body limit holds for a chunked body without Content-Length,
and SIGTERM lets the requests in flight finish with 200 before the process exits."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from nmt.translator import Translator
from reliability.fuzz_api import start_server


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[subprocess.Popen, str]]:
    """One `nmt serve` for this module (a start costs seconds); the SIGTERM test ends it."""
    log = tmp_path_factory.mktemp("live") / "server.log"
    proc, url = start_server(tiny_bundle, log, {"NMT_MAX_BODY_BYTES": "4096"})
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_chunked_body_is_refused_at_the_limit_before_it_ends(server) -> None:
    _, url = server
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(_chunk(b'{"texts": ["' + b"a" * 1000))
        for _ in range(5):  # 5 KB more, then stop sending without the closing chunk
            sock.sendall(_chunk(b"a" * 1000))
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"error"' in body and b"4096" in body
    # The server is fine afterwards.
    assert httpx.get(f"{url}/ready", timeout=10).status_code == 200


def test_sigterm_finishes_requests_in_flight(server, tiny_bundle: Path) -> None:
    """Runs last in this module: it stops the shared server."""
    # Long one-word texts split into many model calls: each request takes a while to translate.
    texts = [[f"{c}" * 2_500] for c in "abcdef"]
    translator = Translator.from_checkpoint(tiny_bundle, num_threads=1)
    proc, url = server

    def post(batch: list[str]) -> tuple[int, str]:
        r = httpx.post(f"{url}/v1/translate", timeout=120, json={
            "texts": batch, "source": "de", "target": "en", "beam_size": 4})
        return r.status_code, r.json()["results"][0]["text"] if r.status_code == 200 else r.text

    try:
        with ThreadPoolExecutor(len(texts)) as pool:
            futures = [pool.submit(post, batch) for batch in texts]
            # SIGTERM once the first request has been translated: the others are in flight.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                metrics = httpx.get(f"{url}/metrics", timeout=10).text
                done = re.search(r'nmt_batch_requests_count\{model="tiny-de-en"\} (\S+)', metrics)
                if done and float(done[1]) >= 1:
                    break
                time.sleep(0.05)
            assert float(done[1]) < len(texts), "all requests finished before SIGTERM"
            proc.send_signal(signal.SIGTERM)
            results = [f.result(timeout=120) for f in futures]
        # uvicorn drains, shuts the lifespan down, then re-raises SIGTERM for its exit status.
        assert proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    expected = [translator.translate(batch, beam_size=4)[0].text for batch in texts]
    assert [status for status, _ in results] == [200] * len(texts)
    assert [text for _, text in results] == expected
    # And the port is closed afterwards: nothing is left serving.
    try:
        httpx.get(f"{url}/health", timeout=2)
        raise AssertionError("server still answering after SIGTERM")
    except httpx.ConnectError:
        pass
