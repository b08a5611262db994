"""Service: optional API keys and per-key rate limits."""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import deque

from service.errors import ApiError

_WINDOW_S = 60.0


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class AccessGuard:
    """Checks a request's API key and counts it against a sliding one-minute window.

    Args:
        api_keys: accepted keys; empty means no key is needed.
        rate_per_minute: requests allowed per key (or per client address without keys); 0: no limit.
    """

    def __init__(self, api_keys: list[str], rate_per_minute: int = 0):
        self._keys = [_digest(k.encode()) for k in api_keys]
        self.rate_per_minute = rate_per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @property
    def key_required(self) -> bool:
        return bool(self._keys)

    def check(self, api_key: object, client: str) -> None:
        """Raises ApiError 403 (bad or missing key) or 429 (over the rate)."""
        identity = f"addr:{client}"
        if self._keys:
            # A JSON body may carry any type here, and lone surrogates; neither may crash.
            given = _digest(api_key.encode("utf-8", "surrogatepass")
                            if isinstance(api_key, str) else b"")
            # compare_digest against every key, so timing says nothing about which one matched;
            # comparing fixed-length digests keeps it from revealing the keys' lengths too.
            matched = [i for i, k in enumerate(self._keys) if hmac.compare_digest(given, k)]
            if not api_key or not isinstance(api_key, str) or not matched:
                raise ApiError(403, "Invalid API key")
            identity = f"key:{matched[0]}"
        if self.rate_per_minute:
            self._count(identity)

    def _count(self, identity: str) -> None:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(identity, deque())
            while hits and now - hits[0] >= _WINDOW_S:
                hits.popleft()
            if len(hits) >= self.rate_per_minute:
                retry = max(1, math.ceil(_WINDOW_S - (now - hits[0])))
                raise ApiError(429, f"Slowdown: {self.rate_per_minute} per 1 minute",
                               {"Retry-After": str(retry)})
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients so the table stays bounded
                idle = [i for i, h in self._hits.items() if not h or now - h[-1] >= _WINDOW_S]
                for ident in idle:
                    del self._hits[ident]
