"""Service: the FastAPI application factory. `uvicorn --factory service.main:create_app`.

Nothing is built at import time. Models load once, in the lifespan; until then /ready and the
translation routes answer 503.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.access import AccessGuard, RedisWindows, SharedLimitsError
from service.batching import Arrivals, ArrivalsMiddleware
from service.detect import LanguageDetector
from service.errors import install_error_handlers
from service.limits import BodyTimeoutMiddleware
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.registry import ModelRegistry
from service.request_scope import RequestScopeMiddleware
from service.routers import documents, libretranslate, models, ops, translations, web
from service.settings import ServiceSettings
from service.uploads import UploadBodyLimitMiddleware

logger = logging.getLogger("service")

STARTUP_FAILURE = 3  # uvicorn's exit status for an app that cannot start (not restarted)

DESCRIPTION = """\
Neural machine translation over HTTP.

* **LibreTranslate-compatible**: `POST /translate`, `POST /detect`, `GET /languages`,
  `GET /frontend/settings`, `POST /suggest` (disabled), `POST /translate_file` and
  `GET /download_file/<name>` (documents); existing LibreTranslate clients work
  unchanged. Fields come as JSON, as a form, or in the query string.
* **Native**: `POST /v1/translate` (batches, a model and domain by name, beam size, n-best,
  scores, attention), `POST /v1/documents` (a file in, the translated file out),
  `GET /v1/models` (what each model is for, its domains, scores and size).
* **Operations**: `GET /health`, `GET /ready`, `GET /metrics` (Prometheus).

Errors are `{"error": "..."}`. 400: bad input; 403: bad API key; 408: the body arrived too
slowly (NMT_BODY_TIMEOUT_S); 413: body too large, or texts that would cost the model more than a
cost limit allows (source subwords, sentences, decoding steps; the message names the setting);
422: body does not match the schema; 429: rate limit, or too many wrong API keys from one
address (Retry-After); 503: not ready or too many texts waiting (Retry-After); 504: the request
passed its timeout (NMT_REQUEST_TIMEOUT_S).
"""


def _version() -> str:
    try:
        return importlib.metadata.version("nmt")
    except importlib.metadata.PackageNotFoundError:  # run from a source checkout
        return "source"


def _shared_windows(settings: ServiceSettings) -> RedisWindows | None:
    """The Redis windows NMT_REDIS_URL names, or None without it.

    A Redis that does not answer stops the start-up with one line on stderr and uvicorn's
    start-up failure status (3), which also stops `nmt serve --workers N` rather than having
    uvicorn restart each worker forever.
    """
    if not settings.redis_url:
        return None
    try:
        return RedisWindows(settings.redis_url, prefix=settings.redis_prefix,
                            timeout_s=settings.redis_timeout_s)
    except SharedLimitsError as err:
        print(f"nmt serve: error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(STARTUP_FAILURE) from None


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Builds the app; models load when it starts (uvicorn, or `with TestClient(app)`)."""
    settings = settings or ServiceSettings()
    metrics = ServiceMetrics()
    arrivals = Arrivals()  # translation requests on their way to a batcher's queue

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading reads files and builds models: keep it off the event loop.
        registry = await asyncio.to_thread(ModelRegistry.load, settings, metrics, arrivals)
        logger.info("serving %s", ", ".join(
            f"{e.name} ({e.pair[0]}->{e.pair[1]}{', default' if registry.is_default(e) else ''})"
            for e in registry.models.values()))
        app.state.registry = registry
        metrics.mark_ready(True)
        try:
            yield
        finally:
            metrics.mark_ready(False)
            app.state.registry = None
            registry.close()

    app = FastAPI(title="nmt", version=_version(), description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.arrivals = arrivals
    app.state.guard = AccessGuard(settings.api_keys, settings.rate_limit_per_minute,
                                  settings.auth_failures_per_minute,
                                  shared=_shared_windows(settings))
    app.state.detector = LanguageDetector()  # loads its model on first use
    app.state.registry = None
    install_error_handlers(app)
    for module in (libretranslate, translations, documents, models, ops, web):
        app.include_router(module.router)

    # Added innermost first: metrics sees every response, the size limit runs before any route.
    app.add_middleware(ArrivalsMiddleware, arrivals=arrivals)
    app.add_middleware(UploadBodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       max_file_bytes=settings.max_file_bytes)
    app.add_middleware(BodyTimeoutMiddleware, timeout_s=settings.body_timeout_s)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    # Outside the body limits, so that watching for a disconnect after the body is no body read.
    app.add_middleware(RequestScopeMiddleware, by_key=bool(settings.api_keys))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
