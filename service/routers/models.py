"""Service: GET /v1/models, the loaded bundles with their metadata and evaluation scores."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.deps import RegistryDep
from service.schemas import ModelResponse

router = APIRouter(prefix="/v1", tags=["native"])


@router.get("/models", response_model=list[ModelResponse], summary="The loaded models")
async def list_models(registry: RegistryDep) -> Any:
    return [
        ModelResponse(name=e.name, source=src, target=tgt,
                      has_attention=e.translator.has_attention,
                      max_input_tokens=e.translator.max_input_tokens,
                      metadata=dict(e.translator.metadata))
        for (src, tgt), e in sorted(registry.entries.items())
    ]
