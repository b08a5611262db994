"""A client that goes away while sending its body is no server error: no 500, no traceback, one
info line, and status 499 ("client closed request") in the metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from service.batching import DecodeOptions


def _scope(path: str, content_type: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": [(b"host", b"test"), (b"content-type", content_type)],
            "client": ("127.0.0.1", 40000), "server": ("test", 80), "state": {}}


def _send_half_then_leave(app: Any, path: str, content_type: bytes, half: bytes
                          ) -> list[dict[str, Any]]:
    """Calls the ASGI app as a server would when the client disconnects mid-body."""
    messages = [{"type": "http.request", "body": half, "more_body": True}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(_scope(path, content_type), receive, send))
    return sent


@pytest.mark.parametrize("path, content_type, half", [
    ("/translate", b"application/json", b'{"q": "Ein Hund", "sou'),
    ("/translate", b"application/x-www-form-urlencoded", b"q=Ein+Hund&sou"),
    ("/detect", b"application/json", b'{"q": "Ein'),
    ("/v1/translate", b"application/json", b'{"texts": ["Ein'),
])
def test_a_client_gone_mid_body_is_a_499_not_an_error(serve_fakes, caplog: pytest.LogCaptureFixture,
                                                       path: str, content_type: bytes,
                                                       half: bytes) -> None:
    s = serve_fakes()
    with caplog.at_level(logging.DEBUG):
        sent = _send_half_then_leave(s.app, path, content_type, half)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert 500 not in statuses
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    closed = [r for r in caplog.records if "closed the connection" in r.getMessage()]
    assert len(closed) == 1 and closed[0].levelno == logging.INFO
    metrics = s.client.get("/metrics").text
    assert f'nmt_http_requests_total{{method="POST",route="{path}",status="499"}} 1.0' in metrics
    assert 'status="500"' not in metrics
    assert s.app.state.arrivals.pending == 0  # no batch waits for it
    assert s.translators["fake-de-en"].calls == []


def test_a_client_gone_while_its_translation_waits_frees_its_place(serve_fakes) -> None:
    """The whole body arrives, then the client disconnects while the model is busy: the request
    ends at once as a 499, and its text never reaches the model (one lane: no second call runs
    beside the busy one)."""
    s = serve_fakes(model_lanes=1)
    fake = s.translators["fake-de-en"]
    fake.gate.clear()  # the model is busy with someone else's call
    busy = s.registry.models["fake-de-en"].batcher.submit(
        ["someone else"], [2], DecodeOptions(), client="other")
    deadline = time.monotonic() + 5
    while not fake.calls and time.monotonic() < deadline:  # the model is inside that call
        time.sleep(0.01)
    assert fake.calls, "the busy call never started"
    body = b'{"texts": ["Ein Hund"], "source": "de", "target": "en"}'
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(0.2)  # the client waits a little, then hangs up
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> float:
        start = asyncio.get_running_loop().time()
        await s.app(_scope("/v1/translate", b"application/json"), receive, send)
        return asyncio.get_running_loop().time() - start

    took = asyncio.run(call())
    fake.gate.set()
    busy.result(5)
    assert took < 5  # not the 30 s request timeout
    metrics = s.client.get("/metrics").text
    assert 'route="/v1/translate",status="499"} 1.0' in metrics
    assert 'nmt_rejected_requests_total{model="fake-de-en",reason="client_gone"} 1.0' in metrics
    assert [c["texts"] for c in fake.calls] == [["someone else"]]
