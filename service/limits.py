"""Service: request limits: body size and read deadline (while the body is read), texts and
characters. What the texts will cost the model is priced in service/cost.py."""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ApiError
from service.settings import ServiceSettings


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit.

    An HTTPException, so FastAPI's body reader re-raises it as it is instead of turning it into
    a 400 "error parsing the body".
    """

    def __init__(self, limit: int):
        # Connection: close, so the server stops reading the rest of the body (an endless
        # chunked upload would otherwise be read, and thrown away, until the keep-alive timeout).
        super().__init__(413, f"request body is larger than {limit} bytes",
                         headers={"Connection": "close"})


class BodySizeLimitMiddleware:
    """Answers 413 for a body over `max_bytes`: at once when Content-Length says so, otherwise
    as soon as the bytes received pass the limit (chunked uploads), without reading the rest."""

    def __init__(self, app: ASGIApp, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_error(send, 400, "invalid Content-Length header")
                    return
                if declared > self.max_bytes:
                    await _send_error(send, 413, BodyTooLarge(self.max_bytes).detail)
                    return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await _run_guarded(self.app, scope, limited_receive, send, BodyTooLarge)


class BodyTimeout(HTTPException):
    """Raised from `receive` when the body has not fully arrived by its deadline (an
    HTTPException, as BodyTooLarge is). The connection is closed after the 408: the rest of the
    body is never read."""

    def __init__(self, timeout_s: float):
        super().__init__(408, f"request body not received within {timeout_s:g} s "
                              "(NMT_BODY_TIMEOUT_S)", headers={"Connection": "close"})


class BodyTimeoutMiddleware:
    """Answers 408 when a request's whole body has not arrived within `timeout_s` of its head.

    A client trickling a byte a second would otherwise hold its connection, and a translation
    request its place among the arrivals that a batch waits for, as long as it likes. The request
    head itself is bounded by the HTTP protocol (service/transport.py).
    """

    def __init__(self, app: ASGIApp, *, timeout_s: float):
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # later reads only wait for a disconnect: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                raise BodyTimeout(self.timeout_s) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await _run_guarded(self.app, scope, timed_receive, send, BodyTimeout)


async def _send_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})


def check_texts(texts: list[str], settings: ServiceSettings, *, field: str,
                prefix: str = "") -> None:
    """Raises a 400 naming `field` when the texts break the configured limits."""
    if len(texts) > settings.max_texts:
        raise ApiError(400, f"{prefix}{field}: {len(texts)} texts exceed the limit of "
                            f"{settings.max_texts} per request")
    total = 0
    for i, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            where = f"{field}[{i}]" if len(texts) > 1 else field
            raise ApiError(400, f"{prefix}{where}: {len(text)} characters exceed the limit of "
                                f"{settings.max_text_chars} per text")
        total += len(text)
    if total > settings.max_request_chars:
        raise ApiError(400, f"{prefix}{field}: {total} characters exceed the limit of "
                            f"{settings.max_request_chars} per request")


async def _run_guarded(app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                       refusal: type[HTTPException]) -> None:
    """Runs `app` with a guarded `receive`; when it raises `refusal` before the response has
    started, answers with that refusal's status and message (after, the connection just ends)."""
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except refusal as exc:
        if started:
            raise
        await _send_error(send, exc.status_code, str(exc.detail))
