"""Service: micro-batching. Concurrent requests for one model are merged into token-budget batches.

Each model has one worker thread (torch releases the GIL, so the event loop keeps serving) and one
bounded queue. The worker takes the oldest request, then every queued request with *identical*
decoding options that still fits in `max_batch_tokens`, and translates them in one call. The
translator's outputs do not depend on what else is in the batch, so a merged request gets exactly
what it would get alone.

How long to wait for more: `Arrivals` counts the translation requests the server has started to
read but not yet queued (their bodies are still being parsed and checked). While some are on their
way, the worker waits for them, up to `max_wait_s`; when none are, it starts at once, so a lone
request pays no batching delay and a burst of 32 is not cut into pieces by a fixed timer.

The queue lives in a thread, not in an event loop, so one batcher serves any number of loops
(uvicorn's, or one per request under Starlette's TestClient).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from nmt.translator import Translation
from service.metrics import ServiceMetrics

logger = logging.getLogger("service.batching")


@dataclass(frozen=True)
class DecodeOptions:
    """Requests are merged only when these are equal."""

    beam_size: int | None = None
    nbest: int = 1
    length_penalty: float | None = None
    return_attention: bool = False
    domain: str | None = None  # the domain tag; None for models without tags
    align: bool = False  # word alignment per candidate (inline HTML tags follow it)
    terms: tuple[str, ...] = ()  # caller's strings to keep verbatim
    glossary: tuple[tuple[str, str], ...] = ()  # (source term, fixed target text)


@dataclass(frozen=True)
class BatchResult:
    translations: list[Translation]  # one per text
    queue_s: float  # time the request waited before its batch started
    compute_s: float  # time of the model call that translated it
    batch_texts: int  # texts in that model call


class QueueFull(Exception):
    """The model's queue holds `max_queue` texts already; the client should retry later."""


class TranslationTimeout(Exception):
    """The request waited longer than its timeout (in the queue or in the model)."""


TranslateFn = Callable[[list[str], DecodeOptions], Sequence[Translation]]


class _Arrival:
    """One request between reaching the server and reaching a queue."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = True


_current_arrival: contextvars.ContextVar[_Arrival | None] = contextvars.ContextVar(
    "nmt_arrival", default=None)


class Arrivals:
    """How many translation requests are being read or checked and will soon be queued.

    The HTTP layer calls `arrive()` when a translation request comes in (in its own context) and
    `leave()` when the response is done; `MicroBatcher.submit` settles the arrival of the request
    it runs in. A request that fails validation never reaches a queue: `leave` settles it then.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending = 0  # read without the lock by the workers: a plain int read is atomic

    def arrive(self) -> contextvars.Token:
        with self._lock:
            self.pending += 1
        return _current_arrival.set(_Arrival())

    def settle_current(self) -> None:
        """Marks the current request as queued (or finished); idempotent."""
        arrival = _current_arrival.get()
        if arrival is not None and arrival.pending:
            with self._lock:
                if arrival.pending:
                    arrival.pending = False
                    self.pending -= 1

    def leave(self, token: contextvars.Token) -> None:
        self.settle_current()
        _current_arrival.reset(token)


@dataclass
class _Job:
    texts: list[str]
    tokens: int
    options: DecodeOptions
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """One model's queue and worker thread.

    Args:
        translate: runs one model call: (texts, options) -> one Translation per text.
        name: the model's name, for metrics and logs.
        enabled: False translates each request alone (still queued, one at a time).
        max_batch_tokens: source subwords per merged call; a larger single request runs alone.
        max_wait_s: the longest the worker waits for more requests to merge.
        max_queue: texts allowed to wait; beyond that `submit` raises QueueFull.
        arrivals: the server's count of requests on their way to a queue; the worker waits for
            more only while it is above zero. None: always wait the full `max_wait_s`.
    """

    def __init__(self, translate: TranslateFn, *, name: str, metrics: ServiceMetrics,
                 enabled: bool = True, max_batch_tokens: int = 4000, max_wait_s: float = 0.005,
                 max_queue: int = 256, arrivals: Arrivals | None = None):
        self._translate = translate
        self.name = name
        self._metrics = metrics
        self._arrivals = arrivals
        self.enabled = enabled
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._queue: deque[_Job] = deque()
        self._queued_texts = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    # ---- client side (any thread or event loop) -------------------------------------------

    def submit(self, texts: list[str], tokens: int, options: DecodeOptions) -> Future:
        """Queues one request; its future resolves to a BatchResult."""
        job = _Job(texts=list(texts), tokens=tokens, options=options)
        if self._arrivals is not None:
            self._arrivals.settle_current()
        with self._cond:
            if self._closed:
                raise RuntimeError("the service is shutting down")
            if self._queue and self._queued_texts + len(texts) > self.max_queue:
                self._metrics.rejected.labels(self.name, "queue_full").inc()
                raise QueueFull(f"{self._queued_texts} texts already waiting")
            self._queue.append(job)
            self._queued_texts += len(texts)
            self._metrics.queue_depth.labels(self.name).set(self._queued_texts)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name=f"translate-{self.name}", daemon=True)
                self._thread.start()
            self._cond.notify()
        return job.future

    async def translate(self, texts: list[str], tokens: int, options: DecodeOptions, *,
                        timeout_s: float) -> BatchResult:
        """Queues a request and waits for it; raises QueueFull or TranslationTimeout."""
        future = self.submit(texts, tokens, options)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except asyncio.TimeoutError:
            # Cancelling the asyncio wrapper cancels the job if it has not started yet.
            self._metrics.rejected.labels(self.name, "timeout").inc()
            raise TranslationTimeout(f"no result within {timeout_s:g} s") from None

    def close(self, timeout_s: float = 5.0) -> None:
        """Stops the worker after the batch in progress; queued requests fail."""
        with self._cond:
            self._closed = True
            pending = list(self._queue)
            self._queue.clear()
            self._queued_texts = 0
            self._cond.notify_all()
        for job in pending:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("the service is shutting down"))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    # ---- worker thread ---------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                try:
                    self._run(batch)
                except Exception:  # never let the worker die: later requests would hang
                    logger.exception("model %s: batch bookkeeping failed", self.name)
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(RuntimeError("translation failed"))

    def _next_batch(self) -> list[_Job] | None:
        """Blocks for the oldest job, then gathers compatible ones; None once closed."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            batch: list[_Job] = []
            first = self._pop(self._queue[0])
            if first is not None:
                batch.append(first)
            if not batch or not self.enabled:
                return batch
            tokens = first.tokens if first else 0
            deadline = time.perf_counter() + self.max_wait_s
            while tokens < self.max_batch_tokens:
                for job in list(self._queue):
                    if (job.options == batch[0].options
                            and tokens + job.tokens <= self.max_batch_tokens
                            and self._pop(job) is not None):
                        batch.append(job)
                        tokens += job.tokens
                if self._arrivals is not None and self._arrivals.pending <= 0:
                    break  # nothing else is on its way: waiting would only add latency
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            return batch

    def _pop(self, job: _Job) -> _Job | None:
        """Removes `job` from the queue (lock held); None if its client already gave up."""
        self._queue.remove(job)
        self._queued_texts -= len(job.texts)
        self._metrics.queue_depth.labels(self.name).set(self._queued_texts)
        return job if job.future.set_running_or_notify_cancel() else None

    def _run(self, batch: list[_Job]) -> None:
        texts = [t for job in batch for t in job.texts]
        start = time.perf_counter()
        try:
            translations = list(self._translate(texts, batch[0].options))
            if len(translations) != len(texts):
                raise RuntimeError(f"translator returned {len(translations)} results "
                                   f"for {len(texts)} texts")
        except BaseException as err:  # noqa: B036 - every waiting client must hear of it
            logger.exception("model %s failed on a batch of %d texts", self.name, len(texts))
            for job in batch:
                job.future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        compute_s = time.perf_counter() - start
        m = self._metrics
        m.batch_requests.labels(self.name).observe(len(batch))
        m.batch_texts.labels(self.name).observe(len(texts))
        m.batch_seconds.labels(self.name).observe(compute_s)
        m.tokens.labels(self.name, "source").inc(sum(job.tokens for job in batch))
        offset = 0
        for job in batch:
            part = translations[offset:offset + len(job.texts)]
            offset += len(job.texts)
            queue_s = start - job.enqueued
            m.queue_wait.labels(self.name).observe(queue_s)
            job.future.set_result(BatchResult(part, queue_s, compute_s, len(texts)))


class ArrivalsMiddleware:
    """Counts POSTs to the translation routes in `arrivals` from the moment they reach the app
    (before their bodies are read and validated) until they are queued or answered."""

    def __init__(self, app: Any, *, arrivals: Arrivals,
                 paths: frozenset[str] = frozenset({"/translate", "/v1/translate"})):
        self.app = app
        self.arrivals = arrivals
        self.paths = paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        token = self.arrivals.arrive()
        try:
            await self.app(scope, receive, send)
        finally:
            self.arrivals.leave(token)
