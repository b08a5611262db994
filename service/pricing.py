"""Service: measuring a request (its source subwords and model inputs), here or in the pricing
process.

Measuring a long request is Python: normalisation, SentencePiece, the protected-span patterns and
sentence planning take about 40 ms for 20 KB. In the HTTP process that Python holds the GIL the
event loop needs to answer everyone else, so a client sending long requests it hangs up on at
once (issue 17's D1c: ten 20 KB requests a round) slowed every other client's short request to
2.5-5x its idle latency, although no model call ever started. With model worker processes the
service therefore measures long requests in one process of its own: the HTTP process only waits
on a pipe, and the operating system, not the GIL, shares the cores between the pricing process
and the rest. The pricing process holds only each model's `SourceSide` (no torch, no weights):
it starts in about a second and needs tens of MB.

Requests take turns for it (one at a time, in arrival order); one whose client has hung up by its
turn is not measured at all. The limits are checked by the caller (service/cost.py); `measure`
only stops early when the subwords already exceed them, so that planning, the slow part, never
sees a text that will be refused anyway.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol

from nmt.source_side import SourceSide
from nmt.text.markup import parse_html

logger = logging.getLogger("service.pricing")

NICENESS = 10  # the pricing process's scheduling priority, below the rest of the service
PARENT_POLL_S = 1.0  # how often the pricing process checks that the server is still there


class Measurable(Protocol):
    """What measuring needs: a Translator, its `SourceSide`, or a test's fake."""

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def count_units(self, texts: Sequence[str]) -> int: ...


@dataclass(frozen=True)
class Measure:
    """What a request's texts will make the model do."""

    tokens: list[int]  # source subwords per text (after normalisation; html: over its blocks)
    units: int | None  # model inputs (sentences, clauses); None: not planned, tokens over limit


def model_inputs(text: str, fmt: str) -> list[str]:
    """The strings the model translates for one request text: itself, or its HTML blocks."""
    if fmt != "html":
        return [text]
    return [block.text for block in parse_html(text).blocks]


def measure(source: Measurable, texts: Sequence[str], fmt: str, *, max_text_tokens: int,
            max_total_tokens: int) -> Measure:
    """Counts `texts`' subwords, then (when no text has over `max_text_tokens` and all of them
    together at most `max_total_tokens`) their model inputs."""
    inputs = [model_inputs(text, fmt) for text in texts]
    flat = [piece for pieces in inputs for piece in pieces]
    counts = iter(source.count_tokens(flat) if flat else [])
    tokens = [sum(next(counts) for _ in pieces) for pieces in inputs]
    if max(tokens, default=0) > max_text_tokens or sum(tokens) > max_total_tokens:
        return Measure(tokens, None)
    return Measure(tokens, source.count_units(flat) if flat else 0)


# In the pricing process: the models' source sides, set once by `_load`.
_SOURCES: dict[str, SourceSide] = {}


def _load(sources: Mapping[str, SourceSide]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops this process itself
    _SOURCES.update(sources)
    server = os.getppid()
    threading.Thread(target=_exit_with, args=(server,), name="nmt-pricing-parent",
                     daemon=True).start()
    # Below the model workers and the HTTP process: a core shared with a short request's
    # decoding goes to that decoding first, and long requests are measured with what is left.
    os.nice(NICENESS)


def _exit_with(server: int) -> None:
    """Ends the pricing process once the server that started it is gone (killed with kill -9,
    or by the OOM killer): its task queue never reports that, since this process holds the
    queue's write end too, so it would wait forever."""
    while os.getppid() == server:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


def _measure_in_process(name: str, texts: list[str], fmt: str, max_text_tokens: int,
                        max_total_tokens: int) -> Measure:
    return measure(_SOURCES[name], texts, fmt, max_text_tokens=max_text_tokens,
                   max_total_tokens=max_total_tokens)


def _ready() -> tuple[int, int]:
    return os.getpid(), len(_SOURCES)


class PricingProcess:
    """One process that measures requests for every model in `sources`.

    Args:
        sources: model name -> its source side (pickled into the process once, at start).
        start_timeout_s: how long `start` waits for the process to answer.
    """

    def __init__(self, sources: Mapping[str, SourceSide], *, start_timeout_s: float = 60.0):
        self._sources = dict(sources)
        self._start_timeout_s = start_timeout_s
        self._pool = self._spawn()
        self._turn: asyncio.Lock | None = None  # made on the event loop, at the first request

    def _spawn(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_load, initargs=(self._sources,))

    def start(self) -> PricingProcess:
        """Starts the process and waits until it holds every model's source side."""
        pid, loaded = self._pool.submit(_ready).result(timeout=self._start_timeout_s)
        logger.info("pricing process %d ready (%d models)", pid, loaded)
        return self

    def process_id(self) -> int:
        """The pricing process's pid (it is started if it is not running)."""
        pid, _ = self._pool.submit(_ready).result(timeout=self._start_timeout_s)
        return pid

    def for_model(self, name: str) -> ModelPricing:
        if name not in self._sources:
            raise KeyError(f"no model {name!r} in the pricing process")
        return ModelPricing(self, name)

    async def measure(self, name: str, texts: list[str], fmt: str, *, max_text_tokens: int,
                      max_total_tokens: int, skip: Callable[[], bool]) -> Measure | None:
        """Measures `texts` for model `name` in the pricing process, after the requests before
        it; None, unmeasured, when `skip()` says at its turn that nobody waits any more.

        A pricing process that died (killed, out of memory) is replaced, and the request that
        found it dead is measured here instead.
        """
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            if skip():
                return None
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._pool, _measure_in_process, name, texts,
                                                  fmt, max_text_tokens, max_total_tokens)
            except BrokenProcessPool:
                logger.error("the pricing process died; starting a new one")
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._spawn()
                return measure(self._sources[name], texts, fmt, max_text_tokens=max_text_tokens,
                               max_total_tokens=max_total_tokens)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class ModelPricing:
    """The pricing process, for one model."""

    process: PricingProcess
    name: str

    async def measure(self, texts: list[str], fmt: str, *, max_text_tokens: int,
                      max_total_tokens: int, skip: Callable[[], bool]) -> Measure | None:
        return await self.process.measure(self.name, texts, fmt, max_text_tokens=max_text_tokens,
                                          max_total_tokens=max_total_tokens, skip=skip)
