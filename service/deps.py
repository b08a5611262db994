"""Service: request dependencies: settings, loaded models, metrics, access checks, detector."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.access import AccessGuard
from service.detect import LanguageDetector
from service.errors import ApiError
from service.metrics import ServiceMetrics
from service.registry import ModelRegistry
from service.settings import ServiceSettings


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def get_registry(request: Request) -> ModelRegistry:
    """The loaded models; 503 until the lifespan has loaded them (tests override this)."""
    registry = getattr(request.app.state, "registry", None)
    if registry is None:
        raise ApiError(503, "models are not loaded yet", {"Retry-After": "5"})
    return registry


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


def get_guard(request: Request) -> AccessGuard:
    return request.app.state.guard


def get_detector(request: Request) -> LanguageDetector:
    return request.app.state.detector


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def header_api_key(request: Request) -> str | None:
    """The key from `X-API-Key` or `Authorization: Bearer <key>`."""
    key = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key or None


def require_access(request: Request) -> None:
    """Checks the header key and the rate limit (the native API; /translate reads its body)."""
    get_guard(request).check(header_api_key(request), client_address(request))


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
GuardDep = Annotated[AccessGuard, Depends(get_guard)]
DetectorDep = Annotated[LanguageDetector, Depends(get_detector)]
