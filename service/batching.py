"""Service: micro-batching. Concurrent requests for one model are merged into token-budget batches.

Each model has one bounded queue, shared fairly between clients (deficit round-robin over request
slices, see `MicroBatcher`), and worker threads ("lanes"; torch releases the GIL, so the event
loop keeps serving) that take model calls from it, one client's work in one lane at a time. A
model call holds slices with *identical* decoding options only, up to `max_batch_tokens`. The
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
import contextlib
import contextvars
import itertools
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from nmt.translator import Translation, TranslationModel
from service.metrics import ServiceMetrics
from service.request_scope import current_client, current_gone

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


class ClientGone(Exception):
    """The client disconnected (or its wait was cancelled) before its translation was ready."""


# (texts, options, abandoned) -> one Translation per text; `abandoned()` gives the indices of
# the texts nobody waits for any more (the translator drops them at its next decoding step).
TranslateFn = Callable[[list[str], DecodeOptions, Callable[[], Collection[int]]],
                       Sequence[Translation]]


def translate_with(translator: TranslationModel, texts: list[str], options: DecodeOptions,
                   abandoned: Callable[[], Collection[int]]) -> list[Translation]:
    """One model call: what `options` ask of `translator` (in the server's process or in a
    model worker process, `service.model_workers`)."""
    return translator.translate(
        texts, beam_size=options.beam_size, nbest=options.nbest,
        length_penalty=options.length_penalty, return_attention=options.return_attention,
        domain=options.domain, align=options.align, terms=options.terms,
        glossary=dict(options.glossary), abandoned=abandoned)


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


@dataclass(eq=False)
class _Job:
    """One request: its texts, cut into slices that are scheduled one by one."""

    texts: list[str]
    tokens: list[int]  # source subwords per text
    options: DecodeOptions
    client: str
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)
    results: list[Translation | None] = field(default_factory=list)
    slices_left: int = 0
    started: float | None = None  # when its first slice went into the model
    compute_s: float = 0.0
    batch_texts: int = 0  # texts in the largest model call it was part of
    # Set (from any thread) when the caller stops waiting; read by the worker at every step.
    abandoned: bool = False


@dataclass(eq=False)
class _Slice:
    job: _Job
    start: int  # texts[start:stop] of the job
    stop: int
    tokens: int


def _slices(job: _Job, slice_tokens: int) -> list[_Slice]:
    """Consecutive texts of `job`, at most `slice_tokens` subwords each (a longer text alone)."""
    out: list[_Slice] = []
    start, tokens = 0, 0
    for i, n in enumerate(job.tokens):
        if i > start and tokens + n > slice_tokens:
            out.append(_Slice(job, start, i, tokens))
            start, tokens = i, 0
        tokens += n
    if start < len(job.texts):
        out.append(_Slice(job, start, len(job.texts), tokens))
    return out


class MicroBatcher:
    """One model's queue and worker thread, shared fairly between clients.

    Scheduling: each request is cut into slices of at most `slice_tokens` source subwords, queued
    under its client's identity (`service.request_scope.current_client`). The worker builds each
    model call by deficit round-robin over the clients with work: every client in turn earns
    `slice_tokens` of credit and spends it on its oldest slices (of the call's decoding options),
    so a client with a 400-page document and one with a single sentence each get one share of
    every call. While only one client has work (and none other had for `shared_for_s`), its
    slices fill whole calls of up to `max_batch_tokens`; once a second client shows up, calls
    are one round each, so its sentence waits for at most one share per client, not for the
    whole document.

    Lanes: `lanes` worker threads take calls from the same queue, but one client's work runs in
    one lane at a time; so while one client's long call runs (a 5,000-character paragraph at beam
    8 takes seconds on a CPU), a second client's sentence runs beside it instead of after it.
    With one lane, every call waits for the one before. With `spare_cost` > 0, a lane is not
    left idle while the only client with work is busy in another lane (and no other client had
    work within `shared_for_s`): it runs that client's next slices as a *spare* call, but only
    one that costs at most `spare_cost` (source subwords x beam): many short sentences from one
    client (all load through one proxy address) use every lane, and a client that shows up
    meanwhile waits for one short call at most, never for a long one.

    Cancellation: a request whose caller stops waiting (its timeout, its client's disconnect)
    loses its queued slices, and its sentences leave a running call at the next decoding step
    (through the translate function's `abandoned` callback).

    Args:
        translate: runs one model call: (texts, options, abandoned) -> one Translation per
            text; `abandoned()` gives the indices of texts nobody waits for any more.
        name: the model's name, for metrics and logs.
        enabled: False translates each request alone (still queued, one at a time).
        max_batch_tokens: source subwords per merged call; a larger single text runs alone.
        slice_tokens: a client's share of one call while several clients have work.
        max_wait_s: the longest the worker waits for more requests to merge.
        max_queue: texts allowed to wait; beyond that `submit` raises QueueFull.
        max_client_queue: texts one client may have waiting; beyond that QueueFull.
        arrivals: the server's count of requests on their way to a queue; the worker waits for
            more only while it is above zero. None: always wait the full `max_wait_s`.
        lanes: model calls that may run at once, each for a different client.
        spare_cost: the largest spare call (source subwords x beam width); 0: none.
        default_beam: the model's beam width, for requests that leave it to the model.
    """

    shared_for_s = 2.0  # how long a second client keeps calls at one round after its last work

    def __init__(self, translate: TranslateFn, *, name: str, metrics: ServiceMetrics,
                 enabled: bool = True, max_batch_tokens: int = 4000, slice_tokens: int = 64,
                 max_wait_s: float = 0.005, max_queue: int = 256,
                 max_client_queue: int | None = None, arrivals: Arrivals | None = None,
                 lanes: int = 1, spare_cost: int = 0, default_beam: int = 1):
        self._translate = translate
        self.name = name
        self._metrics = metrics
        self._arrivals = arrivals
        self.enabled = enabled
        self.max_batch_tokens = max_batch_tokens
        self.slice_tokens = max(1, min(slice_tokens, max_batch_tokens))
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.max_client_queue = max_queue if max_client_queue is None else max_client_queue
        # Per client, its slices in order; dict order is the round-robin order.
        self._clients: dict[str, deque[_Slice]] = {}
        self._credit: dict[str, int] = {}
        self._client_texts: dict[str, int] = {}
        self._last_seen: dict[str, float] = {}  # when each client last had work queued
        self._queued_texts = 0
        self.lanes = max(1, lanes)
        self.spare_cost = spare_cost
        self.default_beam = default_beam
        self._busy: Counter[str] = Counter()  # per client, the lanes running or gathering its work
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    # ---- client side (any thread or event loop) -------------------------------------------

    def submit(self, texts: list[str], tokens: Sequence[int], options: DecodeOptions, *,
               client: str | None = None) -> Future:
        """Queues one request (`tokens`: source subwords per text); its future resolves to a
        BatchResult. `client` defaults to the request's identity (`current_client`)."""
        return self._enqueue(texts, tokens, options, client).future

    async def translate(self, texts: list[str], tokens: Sequence[int], options: DecodeOptions,
                        *, timeout_s: float) -> BatchResult:
        """Queues a request and waits for it; raises QueueFull, TranslationTimeout, or
        ClientGone when the client disconnects first. Either way its work is dropped: queued
        slices at once, running sentences at the model's next decoding step."""
        job = self._enqueue(texts, tokens, options, None)
        waiting = asyncio.ensure_future(asyncio.wrap_future(job.future))
        gone = current_gone.get()
        watch = asyncio.ensure_future(gone.wait()) if gone is not None else None
        try:
            done, _ = await asyncio.wait([waiting] if watch is None else [waiting, watch],
                                         timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._abandon(job)
            raise
        finally:
            if watch is not None:
                watch.cancel()
        if waiting in done:
            return waiting.result()
        self._abandon(job)
        waiting.cancel()
        if watch is not None and watch in done:
            self._metrics.rejected.labels(self.name, "client_gone").inc()
            raise ClientGone("the client disconnected before its translation was ready")
        self._metrics.rejected.labels(self.name, "timeout").inc()
        raise TranslationTimeout(f"no result within {timeout_s:g} s")

    def count_gone(self) -> None:
        """Counts a request dropped before it was queued because its client had gone."""
        self._metrics.rejected.labels(self.name, "client_gone").inc()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stops the worker after the batch in progress; queued requests fail."""
        with self._cond:
            self._closed = True
            pending = {s.job for queue in self._clients.values() for s in queue}
            self._clients.clear()
            self._client_texts.clear()
            self._queued_texts = 0
            self._cond.notify_all()
        for job in pending:
            _fail(job, RuntimeError("the service is shutting down"))
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout_s)

    def _enqueue(self, texts: list[str], tokens: Sequence[int], options: DecodeOptions,
                 client: str | None) -> _Job:
        if len(tokens) != len(texts):
            raise ValueError(f"{len(tokens)} token counts for {len(texts)} texts")
        client = current_client.get() if client is None else client
        job = _Job(texts=list(texts), tokens=list(tokens), options=options, client=client,
                   results=[None] * len(texts))
        slices = _slices(job, self.slice_tokens if self.enabled else 10**12)
        job.slices_left = len(slices)
        if self._arrivals is not None:
            self._arrivals.settle_current()
        with self._cond:
            if self._closed:
                raise RuntimeError("the service is shutting down")
            mine = self._client_texts.get(client, 0)
            if self._queued_texts and self._queued_texts + len(texts) > self.max_queue:
                self._metrics.rejected.labels(self.name, "queue_full").inc()
                raise QueueFull(f"{self._queued_texts} texts already waiting")
            if mine and mine + len(texts) > self.max_client_queue:
                self._metrics.rejected.labels(self.name, "client_queue_full").inc()
                raise QueueFull(f"this client has {mine} texts waiting already (at most "
                                f"{self.max_client_queue} per client)")
            if not slices:
                job.future.set_result(BatchResult([], 0.0, 0.0, 0))
                return job
            self._clients.setdefault(client, deque()).extend(slices)
            self._credit.setdefault(client, 0)
            self._client_texts[client] = mine + len(texts)
            self._last_seen[client] = time.perf_counter()
            self._queued_texts += len(texts)
            self._metrics.queue_depth.labels(self.name).set(self._queued_texts)
            if not self._threads:
                for lane in range(self.lanes):
                    thread = threading.Thread(target=self._work, daemon=True,
                                              name=f"translate-{self.name}-{lane}")
                    thread.start()
                    self._threads.append(thread)
            self._cond.notify_all()
        # A caller that cancels the future itself (before any slice ran) drops the job too.
        job.future.add_done_callback(lambda f: self._abandon(job) if f.cancelled() else None)
        return job

    def _abandon(self, job: _Job) -> None:
        """Nobody waits for `job` any more: its queued slices go, its running sentences leave
        their call at the next decoding step (the worker reads `job.abandoned`)."""
        if job.abandoned:
            return
        job.abandoned = True
        self._unqueue(job)
        if not job.future.cancel():  # a slice ran or runs: the caller has its error already
            _fail(job, ClientGone("nobody waits for this translation any more"))

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
                    for piece in batch:
                        _fail(piece.job, RuntimeError("translation failed"))
                finally:
                    with self._cond:
                        self._release({piece.job.client for piece in batch})
                        self._cond.notify_all()  # their other work may run in any lane now

    def _next_batch(self) -> list[_Slice] | None:
        """Blocks for work, then gathers one call's slices; None once closed. The clients in
        the call count as busy from its first slice on, while it gathers more too: another lane
        then takes other clients' work (or a spare call), not more of theirs."""
        with self._cond:
            while True:
                if self._servable():
                    break
                spare = self._spare()
                if spare:
                    return spare
                if self._closed:
                    return None
                self._cond.wait()
            batch: list[_Slice] = []
            if not self.enabled:
                client = self._servable()[0]
                self._take(client, batch, None, force=True)
                self._rotate(client)
                self._mark(batch, set())
                return batch
            marked: set[str] = set()
            tokens = self._fill(batch)
            self._mark(batch, marked)
            deadline = time.perf_counter() + self.max_wait_s
            while batch and tokens < self.max_batch_tokens:
                if self._arrivals is not None and self._arrivals.pending <= 0:
                    break  # nothing else is on its way: waiting would only add latency
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
                tokens = self._fill(batch, tokens)
                self._mark(batch, marked)
            return batch

    def _servable(self, mine: Collection[str] = ()) -> list[str]:
        """Clients with queued work and no call running in another lane (lock held), in
        round-robin order: one client's work runs in one lane at a time, so a second lane is
        free for the others. `mine`: the clients of the call being gathered."""
        return [c for c in self._clients if not self._busy[c] or c in mine]

    def _spare(self) -> list[_Slice]:
        """A spare call (lock held): nobody else waits, or has had work within
        `shared_for_s`, so a free lane takes the oldest slices of a client whose work runs in
        another lane, up to `spare_cost` subwords x beam. [] when there is none that small."""
        if not self.enabled or self.spare_cost <= 0 or self._shared():
            return []  # another client had work lately: the free lane stays free for it
        for client in list(self._clients):
            queue = self._clients[client]
            options = queue[0].job.options
            beam = max(1, options.beam_size or self.default_beam)
            if queue[0].tokens * beam > self.spare_cost:
                continue
            batch: list[_Slice] = []
            self._take(client, batch, options, limit=self.spare_cost // beam, spend=False)
            if batch:
                self._rotate(client)
                self._mark(batch, set())
                self._metrics.spare_calls.labels(self.name).inc()
                return batch
        return []

    def _mark(self, batch: list[_Slice], marked: set[str]) -> None:
        """Counts the clients of `batch` as busy in this lane (lock held); `marked`: those
        counted already."""
        for client in {piece.job.client for piece in batch} - marked:
            self._busy[client] += 1
            marked.add(client)

    def _release(self, clients: set[str]) -> None:
        for client in clients:
            self._busy[client] -= 1
            if self._busy[client] <= 0:
                del self._busy[client]

    def _fill(self, batch: list[_Slice], tokens: int = 0) -> int:
        """One deficit round-robin round into `batch` (lock held); returns its tokens.

        Every client with work earns one share of credit. An empty call takes the decoding
        options of the first client, in round-robin order, whose oldest slice its credit pays
        for; when no client can pay, the one closest to it runs one slice on credit, so the
        model never idles with work queued. Then every client with slices of those options
        spends its credit on them.
        """
        shared = self._shared()
        quantum = self.slice_tokens if shared else self.max_batch_tokens
        clients = self._servable({piece.job.client for piece in batch})
        if not clients:
            return tokens
        for client in clients:
            queue = self._clients[client]
            # Credit carries over while a client waits: up to two shares, or its oldest slice
            # if that is larger, so that a text longer than a share also gets its turn.
            cap = max(2 * quantum, queue[0].tokens) if shared else self.max_batch_tokens
            self._credit[client] = min(self._credit[client] + quantum, cap)
        if not batch:
            payable = [c for c in clients if self._clients[c][0].tokens <= self._credit[c]]
            first = payable[0] if payable else max(
                clients, key=lambda c: self._credit[c] - self._clients[c][0].tokens)
            tokens = self._take(first, batch, None, tokens, force=not payable)
            if not batch:
                return tokens  # that slice's caller had given up; the worker comes back
        options = batch[0].job.options
        for client in clients:
            if not shared and tokens >= self.max_batch_tokens:
                break
            if client in self._clients:
                tokens = self._take(client, batch, options, tokens)
        for client in {piece.job.client for piece in batch}:
            self._rotate(client)
        return tokens

    def _take(self, client: str, batch: list[_Slice], batch_options: DecodeOptions | None,
              tokens: int = 0, *, force: bool = False, limit: int | None = None,
              spend: bool = True) -> int:
        """Moves `client`'s oldest slices into `batch` while its credit and the call's token
        budget (`limit`, default `max_batch_tokens`) allow (lock held); returns the batch's
        tokens. `spend=False`: credit neither checked nor spent (a spare call)."""
        queue = self._clients[client]
        limit = self.max_batch_tokens if limit is None else limit
        for piece in list(queue):  # oldest first; slices of other options wait for their call
            if batch_options is None:
                batch_options = piece.job.options
            if piece.job.options != batch_options:
                continue
            if batch and tokens + piece.tokens > limit:
                break
            if spend and not force and piece.tokens > self._credit[client]:
                break
            queue.remove(piece)
            self._dequeued(piece)
            if spend:
                self._credit[client] -= piece.tokens
            job = piece.job
            if job.started is None:
                if not job.future.set_running_or_notify_cancel():
                    continue  # its caller gave up before it started
                job.started = time.perf_counter()
                self._metrics.queue_wait.labels(self.name).observe(job.started - job.enqueued)
            batch.append(piece)
            tokens += piece.tokens
            force = False
            if not self.enabled:
                break
        if not queue:
            self._forget(client)
        return tokens

    def _shared(self) -> bool:
        """More than one client has work, or had some within `shared_for_s` (lock held)."""
        if len(self._clients) > 1:
            return True
        now = time.perf_counter()
        for client, seen in list(self._last_seen.items()):
            if now - seen > self.shared_for_s:
                del self._last_seen[client]
        return len(self._last_seen) > 1

    def _dequeued(self, piece: _Slice) -> None:
        n = piece.stop - piece.start
        self._queued_texts -= n
        self._client_texts[piece.job.client] -= n
        self._metrics.queue_depth.labels(self.name).set(self._queued_texts)

    def _rotate(self, client: str) -> None:
        """Sends `client` to the back of the round-robin order (lock held)."""
        queue = self._clients.pop(client, None)
        if queue:
            self._clients[client] = queue

    def _forget(self, client: str) -> None:
        self._clients.pop(client, None)
        self._credit.pop(client, None)
        if not self._client_texts.get(client):
            self._client_texts.pop(client, None)

    def _run(self, batch: list[_Slice]) -> None:
        texts = [t for piece in batch for t in piece.job.texts[piece.start:piece.stop]]
        offsets = list(itertools.accumulate((p.stop - p.start for p in batch), initial=0))

        def abandoned() -> set[int]:
            return {i for piece, start in zip(batch, offsets, strict=False)
                    if piece.job.abandoned for i in range(start, start + piece.stop - piece.start)}

        start = time.perf_counter()
        try:
            translations = list(self._translate(texts, batch[0].job.options, abandoned))
            if len(translations) != len(texts):
                raise RuntimeError(f"translator returned {len(translations)} results "
                                   f"for {len(texts)} texts")
        except BaseException as err:  # noqa: B036 - every waiting client must hear of it
            logger.exception("model %s failed on a batch of %d texts", self.name, len(texts))
            for piece in batch:
                self._unqueue(piece.job)
                _fail(piece.job, err)
            if not isinstance(err, Exception):
                raise
            return
        compute_s = time.perf_counter() - start
        m = self._metrics
        m.batch_requests.labels(self.name).observe(len({p.job for p in batch}))
        m.batch_texts.labels(self.name).observe(len(texts))
        m.batch_seconds.labels(self.name).observe(compute_s)
        m.tokens.labels(self.name, "source").inc(sum(p.tokens for p in batch))
        for piece, offset in zip(batch, offsets, strict=False):
            job = piece.job
            job.compute_s += compute_s
            job.batch_texts = max(job.batch_texts, len(texts))
            if job.abandoned:
                _fail(job, ClientGone("nobody waits for this translation any more"))
                continue
            job.results[piece.start:piece.stop] = translations[offset:offset + piece.stop
                                                               - piece.start]
            job.slices_left -= 1
            if job.slices_left == 0:
                assert job.started is not None  # set when its first slice was taken
                job.future.set_result(BatchResult(
                    [tr for tr in job.results if tr is not None], job.started - job.enqueued,
                    job.compute_s, job.batch_texts))

    def _unqueue(self, job: _Job) -> None:
        """Removes `job`'s slices that are still queued."""
        with self._cond:
            queue = self._clients.get(job.client)
            if queue:
                for piece in [s for s in queue if s.job is job]:
                    queue.remove(piece)
                    self._dequeued(piece)
                if not queue:
                    self._forget(job.client)


def _fail(job: _Job, err: BaseException) -> None:
    """Ends `job` with `err` unless it has ended already (answered, failed or cancelled)."""
    with contextlib.suppress(InvalidStateError):
        if not job.future.done():
            job.future.set_exception(err)


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
