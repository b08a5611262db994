"""Service: who sent the request being handled, and whether they are still waiting for it.

`RequestScopeMiddleware` sets two context variables for every HTTP request, read by the
micro-batcher (`service.batching`) from the handler's own context:

- `current_client`: the identity the scheduler shares the model by: on a service with API keys,
  `key:<digest>` for a request with a key in its headers (`X-API-Key`, `Authorization: Bearer`;
  a wrong key is refused before anything is queued), else `addr:<host>` (the peer address, which
  uvicorn replaces by the forwarded one only for trusted proxies). Without API keys the address
  alone counts, so a client cannot claim many shares by sending many made-up keys. Keys sent in
  a body (LibreTranslate's `api_key` field) share their address's identity.
- `current_gone`: an `asyncio.Event` set when the client disconnects after sending its whole
  request, so that queued and running work for it can be dropped instead of finished for nobody.

Watching for the disconnect means reading the next ASGI message while the handler works. The
middleware does that itself once the body is complete, and hands the same message to the app if
the app asks for one later, so nothing is read twice or lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ANONYMOUS = "addr:unknown"

current_client: contextvars.ContextVar[str] = contextvars.ContextVar(
    "nmt_client", default=ANONYMOUS)
current_gone: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "nmt_client_gone", default=None)


def client_identity(scope: Scope, *, by_key: bool) -> str:
    """`key:<digest>` from the request's API key header (with `by_key`), else
    `addr:<peer host>`."""
    headers = dict(scope.get("headers") or [])
    key = headers.get(b"x-api-key", b"") if by_key else b""
    auth = headers.get(b"authorization", b"") if by_key else b""
    if not key and auth[:7].lower() == b"bearer ":
        key = auth[7:].strip()
    if key:
        # A digest: identities end up in logs and metrics labels, keys must not.
        return "key:" + hashlib.sha256(key).hexdigest()[:16]
    client = scope.get("client")
    return f"addr:{client[0]}" if client else ANONYMOUS


class RequestScopeMiddleware:
    """Sets `current_client` and `current_gone` for each HTTP request (see the module doc)."""

    def __init__(self, app: ASGIApp, *, by_key: bool = False):
        self.app = app
        self.by_key = by_key  # True when the service checks API keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gone = asyncio.Event()
        watcher: asyncio.Task[Message] | None = None

        async def watch() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            return message

        async def app_receive() -> Message:
            nonlocal watcher
            if watcher is not None:  # the body is complete; the next message is the watcher's
                return await asyncio.shield(watcher)
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif message["type"] == "http.request" and not message.get("more_body", False):
                watcher = asyncio.ensure_future(watch())
            return message

        client_token = current_client.set(client_identity(scope, by_key=self.by_key))
        gone_token = current_gone.set(gone)
        try:
            await self.app(scope, app_receive, send)
        finally:
            current_gone.reset(gone_token)
            current_client.reset(client_token)
            if watcher is not None and not watcher.done():
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
