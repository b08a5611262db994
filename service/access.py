"""Service: optional API keys, per-key rate limits, and a limit on failed key attempts.

Clients are told apart by their API key, or without one by their address: the TCP peer, or the
address a trusted proxy forwarded (uvicorn honours X-Forwarded-For only from the proxies that
`nmt serve --forwarded-allow-ips` / NMT_TRUSTED_PROXIES names; by default from none).

Both limits count in sliding one-minute windows. By default each process keeps its own, so
`--workers 2` (or two replicas) let each client through twice. With NMT_REDIS_URL the windows
live in Redis, through the `limits` library's moving window (a list of timestamps per client,
checked and appended by one Lua script, so the count is exact across every worker and replica).
Redis keys name a client by its address, or by a digest of the digest of its API key, never by
the key itself. If Redis stops answering, each process falls back to its own windows (fail open
to per-process limits, see docs/deploy.md), logs that at most once a minute, and tries Redis again
after a few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import math
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from service.errors import ApiError

logger = logging.getLogger("service")

_WINDOW_S = 60.0
_MAX_IDENTITIES = 10_000  # beyond this many, idle clients are forgotten
_REDIS_RETRY_S = 5.0  # after a Redis error, each process counts alone this long before retrying
_REDIS_LOG_EVERY_S = 60.0  # "Redis is unreachable" at most this often


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


class SharedLimitsError(RuntimeError):
    """The Redis that NMT_REDIS_URL names cannot be used (checked once, when the app is built)."""


def redacted_url(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class RedisWindows:
    """One-minute moving windows in Redis, shared by every process that names the same Redis.

    Args:
        url: redis://HOST:PORT/DB, rediss://... (TLS) or unix:///path.sock (NMT_REDIS_URL).
        prefix: the start of every key (NMT_REDIS_PREFIX), so deployments can share one Redis.
        timeout_s: connect and command timeout (NMT_REDIS_TIMEOUT_S); a command is tried at most
            twice (once more on a stale pooled connection).

    Raises:
        SharedLimitsError: naming NMT_REDIS_URL, when the `limits` package (the `redis` extra) is
            missing or Redis does not answer a PING.
    """

    def __init__(self, url: str, *, prefix: str = "nmt", timeout_s: float = 0.5):
        self.where = redacted_url(url)
        try:
            limits = importlib.import_module("limits")
            importlib.import_module("limits.storage")
            importlib.import_module("limits.strategies")
            redis = importlib.import_module("redis")
            backoff = importlib.import_module("redis.backoff")
            retry = importlib.import_module("redis.retry")
        except ImportError as err:
            raise SharedLimitsError(
                f"NMT_REDIS_URL is set, but {err.name or 'limits'} is not installed (shared "
                "limits need the redis extra): pip install 'nmt[redis]', or unset NMT_REDIS_URL"
            ) from None
        self._item = limits.RateLimitItemPerMinute
        self._items: dict[int, Any] = {}
        try:
            self._storage = limits.storage.RedisStorage(
                url, key_prefix=prefix, wrap_exceptions=True,
                socket_connect_timeout=timeout_s, socket_timeout=timeout_s,
                retry=retry.Retry(backoff.NoBackoff(), 1))
            self._storage.get_connection().ping()
        except (redis.RedisError, OSError, ValueError) as err:
            raise SharedLimitsError(f"NMT_REDIS_URL={self.where}: cannot reach Redis ({err})"
                                    ) from None
        self._limiter = limits.strategies.MovingWindowRateLimiter(self._storage)
        # What a lost Redis raises: limits' StorageError around redis-py's errors, or the errors
        # themselves (a timeout while connecting, say).
        self.errors: tuple[type[Exception], ...] = (
            importlib.import_module("limits.errors").StorageError, redis.RedisError, OSError)
        self.retry_s = _REDIS_RETRY_S
        self._lock = threading.Lock()
        self._paused_until = 0.0  # monotonic time before which Redis is not tried again
        self._next_log = 0.0
        self._lost = False  # a call failed since Redis last answered
        self._announced = False  # and that was logged

    def available(self) -> bool:
        """False for `retry_s` after an error: meanwhile each process counts alone."""
        return time.monotonic() >= self._paused_until

    def over(self, window: str, limit: int, identity: str, *, count: bool) -> int | None:
        """Seconds until `identity` may have another event in `window` (of `limit` a minute);
        None if it may now, and then, with `count`, the event is counted (atomically in Redis).
        Raises one of `self.errors` when Redis fails."""
        item = self._items.get(limit)
        if item is None:
            item = self._items.setdefault(limit, self._item(limit))
        room = (self._limiter.hit(item, window, identity) if count
                else self._limiter.test(item, window, identity))
        retry = None
        if not room:
            reset = self._limiter.get_window_stats(item, window, identity).reset_time
            retry = max(1, math.ceil(reset - time.time()))
        if self._lost:
            self._recovered()
        return retry

    def lost(self, err: Exception) -> None:
        """Notes a failed Redis call: pause Redis for `retry_s`, log at most once a minute."""
        now = time.monotonic()
        with self._lock:
            self._paused_until = now + self.retry_s
            self._lost = True
            if now < self._next_log:
                return
            self._next_log = now + _REDIS_LOG_EVERY_S
            self._announced = True
        logger.warning("NMT_REDIS_URL=%s: Redis is unreachable (%s: %s); rate limits count in "
                       "each process alone until it answers again (logged at most once a "
                       "minute)", self.where, type(err).__name__, err)

    def _recovered(self) -> None:
        """Notes that Redis answers again; says so if the loss was logged (so a Redis that comes
        and goes is still two lines a minute at most)."""
        with self._lock:
            announced = self._lost and self._announced
            self._lost = self._announced = False
        if announced:
            logger.warning("NMT_REDIS_URL=%s: Redis answers again; rate limits are shared "
                           "again", self.where)


class AccessGuard:
    """Checks a request's API key and counts it against sliding one-minute windows.

    Args:
        api_keys: accepted keys; empty means no key is needed.
        rate_per_minute: requests allowed per key (or per client address without keys); 0: no limit.
        auth_failures_per_minute: wrong or missing keys allowed per client address; past them,
            every attempt from that address is a 429 until the oldest failure is a minute old,
            so keys cannot be guessed at the server's speed. 0: no limit.
        shared: windows in Redis (NMT_REDIS_URL) that every worker and replica counts in; None:
            this process counts alone. Either way the in-process windows are kept, for when
            Redis fails.
    """

    def __init__(self, api_keys: list[str], rate_per_minute: int = 0,
                 auth_failures_per_minute: int = 0, *, shared: RedisWindows | None = None):
        self._keys = [_digest(k.encode()) for k in api_keys]
        # The name a key's requests count under (here and in Redis): a digest of its digest.
        self._key_ids = [hashlib.sha256(b"nmt-access\0" + d).hexdigest()[:32] for d in self._keys]
        self.rate_per_minute = rate_per_minute
        self._hits = SlidingWindow(rate_per_minute)
        self._failures = SlidingWindow(auth_failures_per_minute)
        self._lock = threading.Lock()
        self.shared = shared

    @property
    def key_required(self) -> bool:
        return bool(self._keys)

    def check(self, api_key: object, client: str) -> None:
        """Raises ApiError 403 (bad or missing key) or 429 (over a rate)."""
        identity = f"addr:{client}"
        if self._keys:
            if self._failures.limit:
                self._refuse_if_over(self._failures, "auth", identity,
                                     "Too many failed API key attempts")
            # A JSON body may carry any type here, and lone surrogates; neither may crash.
            given = _digest(api_key.encode("utf-8", "surrogatepass")
                            if isinstance(api_key, str) else b"")
            # compare_digest against every key, so timing says nothing about which one matched;
            # comparing fixed-length digests keeps it from revealing the keys' lengths too.
            matched = [i for i, k in enumerate(self._keys) if hmac.compare_digest(given, k)]
            if not api_key or not isinstance(api_key, str) or not matched:
                if self._failures.limit:
                    self._over(self._failures, "auth", identity, count=True)
                raise ApiError(403, "Invalid API key")
            identity = f"key:{self._key_ids[matched[0]]}"
        if self.rate_per_minute:
            self._refuse_if_over(self._hits, "rate", identity, "Slowdown", count=True)

    def _refuse_if_over(self, window: SlidingWindow, name: str, identity: str, what: str, *,
                        count: bool = False) -> None:
        """A 429 `what: N per 1 minute` if `identity` is at the window's limit; else, with
        `count`, counts this event."""
        retry = self._over(window, name, identity, count=count)
        if retry is not None:
            raise ApiError(429, f"{what}: {window.limit} per 1 minute", {"Retry-After": str(retry)})

    def _over(self, window: SlidingWindow, name: str, identity: str, *, count: bool
              ) -> int | None:
        """Seconds to wait if `identity` is at the limit of `window` (the shared window `name`
        while Redis answers); None if not, and then, with `count`, the event is counted."""
        shared = self.shared
        if shared is not None and shared.available():
            try:
                return shared.over(name, window.limit, identity, count=count)
            except shared.errors as err:  # fail open to this process's own windows
                shared.lost(err)
        now = time.monotonic()
        with self._lock:
            retry = window.retry_after(identity, now)
            if retry is None and count:
                window.add(identity, now)
        return retry
