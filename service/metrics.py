"""Service: Prometheus metrics, kept in a per-app CollectorRegistry (tests build many apps).

With several worker processes (`nmt serve --workers N`), each process counts its own requests;
`nmt serve` then sets PROMETHEUS_MULTIPROC_DIR to a fresh directory before the workers start, so
prometheus-client's multiprocess mode keeps every process's values in files there and /metrics,
whichever worker answers it, reports the sums over all of them (the queue depth gauge as the sum
over live workers).
"""

from __future__ import annotations

import logging
import os
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("service")

CLIENT_CLOSED = 499  # nginx's status for a request whose client went away before the answer

_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    """All the service's metrics, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("nmt_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("nmt_http_request_seconds", "HTTP request latency by route",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_requests = Histogram("nmt_batch_requests", "requests merged into one model call",
                                        ["model"], buckets=_SIZE_BUCKETS, registry=r)
        self.batch_texts = Histogram("nmt_batch_texts", "texts in one model call",
                                     ["model"], buckets=_SIZE_BUCKETS, registry=r)
        self.batch_seconds = Histogram("nmt_batch_seconds", "time of one model call",
                                       ["model"], buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("nmt_queue_wait_seconds", "time a request waited in the queue",
                                    ["model"], buckets=_LATENCY_BUCKETS, registry=r)
        self._loaded = False
        self.workers_ready = Gauge("nmt_workers_ready",
                                   "worker processes of this server with their models loaded",
                                   registry=r, multiprocess_mode="livesum")
        self.queue_depth = Gauge("nmt_queue_depth", "texts waiting to be translated",
                                 ["model"], registry=r, multiprocess_mode="livesum")
        self.tokens = Counter(
            "nmt_tokens", "subword tokens translated (source read, target written)",
            ["model", "side"], registry=r)
        self.spare_calls = Counter("nmt_spare_calls", "model calls run as spare calls: a lane "
                                   "that would idle took a busy client's short work",
                                   ["model"], registry=r)
        self.worker_restarts = Counter("nmt_model_worker_restarts",
                                       "model worker processes that died and were replaced",
                                       registry=r)
        self.rejected = Counter("nmt_rejected_requests",
                                "requests refused by the queue (full) or dropped (timed out)",
                                ["model", "reason"], registry=r)

    def mark_ready(self, loaded: bool) -> None:
        """This worker has loaded its models (True) or is letting them go (False)."""
        self._loaded = loaded
        self.workers_ready.set(1 if loaded else 0)

    def ready_workers(self) -> int:
        """How many worker processes have loaded their models: this one, or, in multiprocess
        mode, the sum over every live worker."""
        if not os.environ.get(MULTIPROC_ENV):
            return int(self._loaded)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return int(sum(sample.value for family in registry.collect()
                       if family.name == "nmt_workers_ready" for sample in family.samples))

    def render(self) -> bytes:
        """The exposition text: this process's registry, or every worker's in multiprocess mode."""
        if not os.environ.get(MULTIPROC_ENV):
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class MetricsMiddleware:
    """Counts every HTTP request by its route template (not its raw path, which is unbounded).

    A client that goes away before its response starts (mid-body, say) is no error of ours: the
    request counts as status 499 ("client closed request", as nginx logs it), is logged once at
    info, and Starlette's ClientDisconnect stops here instead of becoming a 500 and a traceback.
    A response the app still sends after the disconnect (FastAPI answers a body it could not
    read with a 400) reaches nobody and counts as 499 too.
    """

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False
        gone = False  # the client disconnected before the response started

        async def watching_receive() -> Message:
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect" and not started:
                gone = True
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = CLIENT_CLOSED if gone else message["status"]
            await send(message)

        try:
            await self.app(scope, watching_receive, recording_send)
        except ClientDisconnect:
            gone = True
            if started:
                raise  # a response was under way: not a disconnect while reading the request
        finally:
            if gone and not started:
                status = CLIENT_CLOSED
            if status == CLIENT_CLOSED:
                logger.info("%s %s: the client closed the connection before the response",
                            scope.get("method", ""), scope.get("path", ""))
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
