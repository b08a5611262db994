"""Service: model worker processes. The decoder runs outside the HTTP process.

Why: in one process, the event loop's per-request Python (parsing, validation, JSON) and the
decoder's per-step Python (beam bookkeeping between matrix products) take turns on one GIL, so
a long decoding call adds its Python time to every other request's latency, and the server's
throughput stops at what one core's Python can do. Here the HTTP process only tokenises,
schedules and answers; the micro-batcher's lanes (threads of the HTTP process) hand each model
call to a worker process and wait on its pipe, which holds no GIL. This is how Triton and
TorchServe separate their front end from model instances.

Each worker process loads every bundle once and serves one call at a time: (model name, texts,
decoding options) -> one Translation per text, computed by the same `Translator.translate` as
in-process serving, so the results are identical. Workers are spawned, not forked: torch's
thread pools and the server's own threads do not survive a fork, and CUDA needs a fresh process.

Cancellation crosses the process boundary through shared memory: each worker has a byte per
text of its call, and a counter. While a lane waits for its call, it marks the texts nobody waits
for any more (their clients disconnected or timed out); the worker's `abandoned()` reads the
marks at every decoding step, so those sentences leave the batch at its next step, as in-process.

A worker that dies (killed, out of memory) fails the call it held with ModelWorkerLost (the
client gets a 503 and may retry) and is replaced by a fresh one; the other workers keep serving.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from nmt.translator import Translation
from service.batching import DecodeOptions, translate_with
from service.settings import usable_cores

logger = logging.getLogger("service.model_workers")

# Texts per call whose abandonment a worker can be told of (a byte each: 64 KiB per worker);
# past it, a text of a larger call only leaves at the call's end. A batch holds at most
# NMT_MAX_BATCH_TOKENS texts (4,000 by default), or one document's units when batching is off.
MARK_CAPACITY = 65_536


class ModelWorkerLost(RuntimeError):
    """The worker process running a call died before it answered; the call may be retried."""


class ModelWorkerFailed(RuntimeError):
    """A worker process could not start (its models did not load); the message says why."""


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker process loads: the bundles by model name, and how."""

    bundles: Mapping[str, Path]
    device: str = "cpu"
    quantize: str | None = None
    num_threads: int | None = None  # torch threads per worker; None: the cores / the workers
    precision: str = "auto"  # the Translator's decoding precision


class _Marks:
    """Shared memory between a lane and its worker: which texts of the current call are
    abandoned. The lane writes, the worker reads; the counter tells the worker when to look."""

    def __init__(self, ctx: Any):
        self.flags = ctx.RawArray(ctypes.c_uint8, MARK_CAPACITY)
        self.count = ctx.RawValue(ctypes.c_uint32, 0)  # marks made in this call

    def clear(self, n: int) -> None:
        ctypes.memset(self.flags, 0, min(n, MARK_CAPACITY))
        self.count.value = 0

    def reader(self, n: int) -> Callable[[], Collection[int]]:
        """The worker's `abandoned()` for a call of `n` texts: the marked indices, read again
        only when the counter moved (the decoder asks at every step)."""
        seen: tuple[int, frozenset[int]] = (0, frozenset())

        def abandoned() -> Collection[int]:
            nonlocal seen
            count = self.count.value
            if count != seen[0]:
                flags = bytes(self.flags[:min(n, MARK_CAPACITY)])
                seen = (count, frozenset(i for i, f in enumerate(flags) if f))
            return seen[1]

        return abandoned

    def mark(self, indices: Collection[int]) -> None:
        fresh = [i for i in indices if i < MARK_CAPACITY and not self.flags[i]]
        for i in fresh:
            self.flags[i] = 1
        if fresh:
            self.count.value += len(fresh)


def _worker_main(spec: WorkerSpec, conn: Connection, marks: _Marks) -> None:
    """A worker process: loads the models, then answers calls until it reads None."""
    from nmt.translator import Translator  # here, so the parent's import stays light

    # Ctrl-C reaches the whole process group; the server stops its workers itself, in order
    # (a KeyboardInterrupt here would only print a traceback from the middle of a pipe read).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        translators = {name: Translator.from_checkpoint(path, device=spec.device,
                                                        quantize=spec.quantize,
                                                        precision=spec.precision,
                                                        num_threads=spec.num_threads)
                       for name, path in spec.bundles.items()}
    except Exception as err:  # noqa: BLE001 - reported to the parent, which stops the start
        conn.send(("failed", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            call = conn.recv()
        except (EOFError, OSError):
            return  # the server went away
        if call is None:
            return
        name, texts, options = call
        try:
            reply: tuple[str, Any] = ("ok", translate_with(translators[name], texts, options,
                                                           marks.reader(len(texts))))
        except Exception as err:  # noqa: BLE001 - the lane raises it for the waiting clients
            reply = ("error", err)
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - e.g. an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(err).__name__}: {err}")))


class _Worker:
    """The HTTP process's handle on one worker process."""

    def __init__(self, ctx: Any, spec: WorkerSpec, index: int):
        self.index = index
        self.conn, child = ctx.Pipe()
        self.marks = _Marks(ctx)
        self.process: BaseProcess = ctx.Process(target=_worker_main, args=(spec, child, self.marks),
                                                name=f"nmt-model-{index}", daemon=True)
        self.process.start()
        child.close()

    def wait_ready(self, timeout_s: float) -> None:
        if not self.conn.poll(timeout_s):
            self.stop()
            raise ModelWorkerFailed(f"model worker {self.index} did not load its models in "
                                    f"{timeout_s:g} s")
        try:
            status, detail = self.conn.recv()
        except (EOFError, OSError):
            status, detail = "failed", f"exit status {self.process.exitcode}"
        if status != "ready":
            self.stop()
            raise ModelWorkerFailed(f"model worker {self.index} could not load its models: "
                                    f"{detail}")

    def call(self, name: str, texts: list[str], options: DecodeOptions,
             abandoned: Callable[[], Collection[int]], poll_s: float) -> list[Translation]:
        self.marks.clear(len(texts))
        self.marks.mark(abandoned())  # those the worker can skip from the start
        try:
            self.conn.send((name, texts, options))
            # Waiting on the pipe releases the GIL; every poll_s the lane passes on which texts
            # lost their clients, so the worker drops them at its next decoding step.
            while not self.conn.poll(poll_s):
                gone = abandoned()
                if gone:
                    self.marks.mark(gone)
            status, payload = self.conn.recv()
        except (EOFError, OSError) as err:
            self.process.join(1.0)
            raise ModelWorkerLost(f"model worker {self.index} died during a call (exit status "
                                  f"{self.process.exitcode})") from err
        if status == "error":
            raise payload
        return payload

    def stop(self, timeout_s: float = 5.0) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout_s)
        self.conn.close()


class ModelWorkerPool:
    """`processes` worker processes, each with every model of `spec`; calls go to a free one.

    `translate` blocks until a worker is free, so the pool also bounds how many model calls run
    at once across all models (the micro-batchers' lanes share it). Thread-safe.

    Args:
        spec: the bundles and how to load them.
        processes: worker processes to start; `start` waits until each has loaded its models.
        start_timeout_s: how long a worker may take to load.
        poll_s: how often a waiting lane passes on abandoned texts.
        on_restart: called (with no arguments) each time a dead worker is replaced.
    """

    def __init__(self, spec: WorkerSpec, *, processes: int, start_timeout_s: float = 300.0,
                 poll_s: float = 0.01, on_restart: Callable[[], None] | None = None):
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        if spec.num_threads is None:
            # Each worker decodes on its own: together they should fill the cores, not more
            # (with `nmt serve --workers N`, N such pools share them: set NMT_NUM_THREADS).
            spec = dataclasses.replace(spec, num_threads=max(1, usable_cores() // processes))
        self.spec = spec
        self.processes = processes
        self.start_timeout_s = start_timeout_s
        self.poll_s = poll_s
        self._on_restart = on_restart
        self._ctx = multiprocessing.get_context("spawn")
        self._free: queue.Queue[_Worker] = queue.Queue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._launched = 0.0

    @property
    def models(self) -> list[str]:
        return sorted(self.spec.bundles)

    def start(self) -> ModelWorkerPool:
        """Starts every worker (loading in parallel) and waits for all: `launch`, then
        `wait_ready`."""
        return self.launch().wait_ready()

    def launch(self) -> ModelWorkerPool:
        """Starts every worker process; they load their models while the caller goes on."""
        self._launched = time.perf_counter()
        with self._lock:
            self._workers = [_Worker(self._ctx, self.spec, i) for i in range(self.processes)]
        return self

    def wait_ready(self) -> ModelWorkerPool:
        """Waits until every launched worker has loaded its models; ModelWorkerFailed (and all
        of them stopped) when one cannot."""
        try:
            for worker in self._workers:
                worker.wait_ready(self.start_timeout_s)
        except ModelWorkerFailed:
            self.close()
            raise
        for worker in self._workers:
            self._free.put(worker)
        logger.info("%d model worker processes ready in %.1f s (%s threads each)",
                    self.processes, time.perf_counter() - self._launched, self.spec.num_threads)
        return self

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers if w.process.pid is not None]

    def translate(self, name: str, texts: list[str], options: DecodeOptions,
                  abandoned: Callable[[], Collection[int]]) -> list[Translation]:
        """One model call in a free worker; raises what the translator raised, or
        ModelWorkerLost when the worker died during it."""
        if name not in self.spec.bundles:
            raise KeyError(f"no model {name!r} in the model workers")
        worker = self._free.get()
        if self._closed:
            self._free.put(worker)
            raise RuntimeError("the service is shutting down")
        try:
            return worker.call(name, texts, options, abandoned, self.poll_s)
        except ModelWorkerLost:
            worker = self._replace(worker)
            raise
        finally:
            self._free.put(worker)

    def _replace(self, dead: _Worker) -> _Worker:
        """A fresh worker in the dead one's place (the others serve meanwhile)."""
        logger.error("model worker %d (pid %s) died; starting a new one", dead.index,
                     dead.process.pid)
        dead.stop(1.0)
        fresh = _Worker(self._ctx, self.spec, dead.index)
        fresh.wait_ready(self.start_timeout_s)
        with self._lock:
            self._workers = [fresh if w is dead else w for w in self._workers]
        if self._on_restart is not None:
            self._on_restart()
        return fresh

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
