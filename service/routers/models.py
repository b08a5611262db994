"""Service: GET /v1/models, the loaded bundles: what each is for, its domains, scores and size."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.deps import RegistryDep
from service.schemas import ModelResponse, ModelSize

router = APIRouter(prefix="/v1", tags=["native"])


@router.get("/models", response_model=list[ModelResponse],
            summary="The loaded models, by pair and name; `default` marks each pair's default")
async def list_models(registry: RegistryDep) -> Any:
    entries = sorted(registry.models.values(), key=lambda e: (e.pair, not registry.is_default(e),
                                                                e.name))
    return [
        ModelResponse(
            name=e.name, source=e.pair[0], target=e.pair[1], default=registry.is_default(e),
            description=e.card.description, domains=list(e.domains),
            default_domain=e.default_domain,
            scores=_scores(e.translator.metadata) or e.card.scores or None,
            size=ModelSize(file_bytes=e.card.file_bytes, parameters=e.card.parameters),
            has_attention=e.translator.has_attention,
            max_input_tokens=e.translator.max_input_tokens,
            metadata=dict(e.translator.metadata))
        for e in entries
    ]


def _scores(metadata: dict[str, Any]) -> dict[str, Any] | None:
    scores = metadata.get("valid_scores")
    return dict(scores) if isinstance(scores, dict) else None
