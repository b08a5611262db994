"""Service: the HTTP/1.1 connection limits `nmt serve` runs uvicorn with.

`nmt serve` chooses uvicorn's h11 protocol, not httptools (uvicorn's default when it is
installed): uvicorn's httptools protocol has no limit on header size at all, while h11 refuses a
request head that is still incomplete past `h11_max_incomplete_event_size` bytes
(NMT_MAX_HEADER_BYTES). h11 checks only heads it is still waiting for, though: a 100 KB head
that arrives in one read (loopback, a fast link) is parsed whole. So the protocol here also
refuses any complete head larger than the limit. Either way the answer is uvicorn's 400 and the
connection closes. The cost is parsing speed, which is nothing beside a model.

uvicorn's keep-alive timeout closes a connection that stays idle after a response, but a timer
that starts only after a response, and stops at the first byte of the next request, leaves two
ways to hold a connection forever: open one and send nothing, or send a request head a byte at a
time. `HeadTimeoutH11Protocol` closes a connection whose request head is not complete within the
keep-alive timeout (NMT_KEEPALIVE_S) of its opening or of its previous response. The body has
its own deadline (service/limits.py, NMT_BODY_TIMEOUT_S), as does the translation
(NMT_REQUEST_TIMEOUT_S). `nmt serve` names the class to uvicorn by its import string, so `nmt`
never imports `service`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class _HeadLimitedConnection(h11.Connection):
    """An h11 server connection that also refuses complete request heads over the limit."""

    def __init__(self, max_head_bytes: int):
        super().__init__(h11.SERVER, max_head_bytes)
        self.max_head_bytes = max_head_bytes

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            size = len(event.method) + len(event.target) + 12 + sum(
                len(name) + len(value) + 4 for name, value in event.headers.raw_items())
            if size > self.max_head_bytes:
                raise h11.RemoteProtocolError(
                    f"request head of {size} bytes is over {self.max_head_bytes}",
                    error_status_hint=431)
        return event


class HeadTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a size limit on every request head
    (`config.h11_max_incomplete_event_size`) and a deadline on it (`config.timeout_keep_alive`
    seconds from the connection's opening or its previous response)."""

    _head_timer: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.config.h11_max_incomplete_event_size is not None:
            self.conn = _HeadLimitedConnection(self.config.h11_max_incomplete_event_size)

    def connection_made(  # type: ignore[override]  # as uvicorn's H11Protocol narrows it
            self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a complete request head arrived: the app has it now
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        # Wait for the next head, unless the connection closes or a pipelined request that was
        # already buffered has started.
        if not self.transport.is_closing() and self.cycle is cycle:
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.timeout_keep_alive, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()
