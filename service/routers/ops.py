"""Service: operations: /health (alive), /ready (models loaded), /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.deps import MetricsDep, RegistryDep, SettingsDep
from service.errors import ApiError
from service.schemas import ErrorResponse, HealthResponse, ReadyResponse

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthResponse, summary="The process is alive")
async def health() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get("/ready", response_model=ReadyResponse, response_model_exclude_none=True,
            summary="Models are loaded (and which bundles were skipped as unloadable)",
            responses={503: {"model": ErrorResponse, "description": "models not loaded yet"}})
async def ready(registry: RegistryDep, settings: SettingsDep, metrics: MetricsDep
                ) -> ReadyResponse:
    # With several workers, whichever answers speaks for all: a balancer must not send traffic
    # to a server some of whose workers would still answer 503.
    loaded = metrics.ready_workers()
    if settings.workers > 1 and loaded < settings.workers:
        raise ApiError(503, f"{loaded} of {settings.workers} workers have loaded their models",
                       {"Retry-After": "1"})
    return ReadyResponse(status="ready", skipped_models=dict(settings.skipped_models) or None)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(m: MetricsDep) -> Response:
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
