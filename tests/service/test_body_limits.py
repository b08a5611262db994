"""Request limits: the body-size middleware stops reading at the limit; the body deadline."""

from __future__ import annotations

import asyncio
import json

from service.limits import BodySizeLimitMiddleware, BodyTimeoutMiddleware


async def _reading_app(scope, receive, send):
    """Reads the whole body, then answers 200."""
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _call(app, headers, chunks):
    consumed = []
    sent = []

    async def receive():
        consumed.append(1)
        more = len(consumed) < len(chunks)
        return {"type": "http.request", "body": chunks[len(consumed) - 1], "more_body": more}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent, len(consumed)


def test_streamed_body_is_cut_off_at_the_limit():
    app = BodySizeLimitMiddleware(_reading_app, max_bytes=2_500)
    sent, consumed = _call(app, [], [b"x" * 1_000] * 100)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == {"error": "request body is larger than 2500 bytes"}
    assert consumed == 3  # stopped reading right after passing the limit


def test_declared_length_is_refused_before_reading():
    app = BodySizeLimitMiddleware(_reading_app, max_bytes=2_500)
    sent, consumed = _call(app, [(b"content-length", b"999999")], [b"x"])
    assert (sent[0]["status"], consumed) == (413, 0)
    sent, consumed = _call(app, [(b"content-length", b"abc")], [b"x"])
    assert sent[0]["status"] == 400


def test_small_body_passes():
    app = BodySizeLimitMiddleware(_reading_app, max_bytes=2_500)
    sent, _ = _call(app, [(b"content-length", b"4")], [b"abcd"])
    assert sent[0]["status"] == 200


def test_oversized_requests_through_the_app(serve_fakes):
    client = serve_fakes(max_body_bytes=2_048).client
    big = {"q": "x" * 4_000, "source": "de", "target": "en"}
    r = client.post("/translate", json=big)
    assert r.status_code == 413
    assert r.json() == {"error": "request body is larger than 2048 bytes"}

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"y" * 1_000

    r = client.post("/v1/translate", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    # The server reads no more of a streamed body it refused: the connection is to be closed.
    assert r.headers["connection"] == "close"
    r = client.post("/translate", content=chunks(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_a_body_that_stops_arriving_gets_408_and_close():
    app = BodyTimeoutMiddleware(_reading_app, timeout_s=0.05)
    sent = []
    first = [{"type": "http.request", "body": b"x", "more_body": True}]

    async def receive():
        if first:
            return first.pop()
        await asyncio.sleep(30)  # the client went quiet

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == {
        "error": "request body not received within 0.05 s (NMT_BODY_TIMEOUT_S)"}


def test_a_complete_body_is_not_timed_afterwards():
    app = BodyTimeoutMiddleware(_reading_app, timeout_s=0.05)
    sent, _ = _call(app, [], [b"ab", b"cd"])
    assert sent[0]["status"] == 200
