"""Service: optional API keys, per-key rate limits, and a limit on failed key attempts.

Clients are told apart by their API key, or without one by their address: the TCP peer, or the
address a trusted proxy forwarded (uvicorn honours X-Forwarded-For only from the proxies that
`nmt serve --forwarded-allow-ips` / NMT_TRUSTED_PROXIES names; by default from none).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import deque

from service.errors import ApiError

_WINDOW_S = 60.0
_MAX_IDENTITIES = 10_000  # beyond this many, idle clients are forgotten


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class SlidingWindow:
    """Events per identity in the last minute, at most `limit`; not thread-safe by itself."""

    def __init__(self, limit: int):
        self.limit = limit
        self._events: dict[str, deque[float]] = {}

    def retry_after(self, identity: str, now: float) -> int | None:
        """Seconds until `identity` may have another event; None if it may now."""
        events = self._events.get(identity)
        if events is None:
            return None
        while events and now - events[0] >= _WINDOW_S:
            events.popleft()
        if len(events) < self.limit:
            return None
        return max(1, math.ceil(_WINDOW_S - (now - events[0])))

    def add(self, identity: str, now: float) -> None:
        self._events.setdefault(identity, deque()).append(now)
        if len(self._events) > _MAX_IDENTITIES:  # forget idle clients so the table stays bounded
            idle = [i for i, e in self._events.items() if not e or now - e[-1] >= _WINDOW_S]
            for ident in idle:
                del self._events[ident]


class AccessGuard:
    """Checks a request's API key and counts it against sliding one-minute windows.

    Args:
        api_keys: accepted keys; empty means no key is needed.
        rate_per_minute: requests allowed per key (or per client address without keys); 0: no limit.
        auth_failures_per_minute: wrong or missing keys allowed per client address; past them,
            every attempt from that address is a 429 until the oldest failure is a minute old,
            so keys cannot be guessed at the server's speed. 0: no limit.
    """

    def __init__(self, api_keys: list[str], rate_per_minute: int = 0,
                 auth_failures_per_minute: int = 0):
        self._keys = [_digest(k.encode()) for k in api_keys]
        self.rate_per_minute = rate_per_minute
        self._hits = SlidingWindow(rate_per_minute)
        self._failures = SlidingWindow(auth_failures_per_minute)
        self._lock = threading.Lock()

    @property
    def key_required(self) -> bool:
        return bool(self._keys)

    def check(self, api_key: object, client: str) -> None:
        """Raises ApiError 403 (bad or missing key) or 429 (over a rate)."""
        identity = f"addr:{client}"
        if self._keys:
            if self._failures.limit:
                self._refuse_if_over(self._failures, identity,
                                     "Too many failed API key attempts")
            # A JSON body may carry any type here, and lone surrogates; neither may crash.
            given = _digest(api_key.encode("utf-8", "surrogatepass")
                            if isinstance(api_key, str) else b"")
            # compare_digest against every key, so timing says nothing about which one matched;
            # comparing fixed-length digests keeps it from revealing the keys' lengths too.
            matched = [i for i, k in enumerate(self._keys) if hmac.compare_digest(given, k)]
            if not api_key or not isinstance(api_key, str) or not matched:
                if self._failures.limit:
                    with self._lock:
                        self._failures.add(identity, time.monotonic())
                raise ApiError(403, "Invalid API key")
            identity = f"key:{matched[0]}"
        if self.rate_per_minute:
            self._refuse_if_over(self._hits, identity, "Slowdown", count=True)

    def _refuse_if_over(self, window: SlidingWindow, identity: str, what: str, *,
                        count: bool = False) -> None:
        """A 429 `what: N per 1 minute` if `identity` is at the window's limit; else, with
        `count`, counts this event."""
        now = time.monotonic()
        with self._lock:
            retry = window.retry_after(identity, now)
            if retry is None and count:
                window.add(identity, now)
        if retry is not None:
            raise ApiError(429, f"{what}: {window.limit} per 1 minute", {"Retry-After": str(retry)})
