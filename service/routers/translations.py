"""Service: the native translation API, POST /v1/translate."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from fastapi import APIRouter, Depends

from service.batching import BatchResult, DecodeOptions
from service.cost import RequestBudget
from service.deps import RegistryDep, SettingsDep, require_access
from service.errors import ApiError
from service.limits import check_texts
from service.registry import ModelEntry, ModelRegistry, UnknownPair
from service.schemas import (
    ERROR_RESPONSES,
    AttentionResponse,
    CandidateResponse,
    TextResult,
    Timing,
    TranslateRequest,
    TranslateResponse,
)
from service.settings import ServiceSettings
from service.translation import decode_options, translate_formatted, translate_texts

router = APIRouter(prefix="/v1", tags=["native"])


@router.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True,
             responses={**ERROR_RESPONSES,
                        422: {**ERROR_RESPONSES[400], "description": "body violates the schema"}},
             dependencies=[Depends(require_access)],
             summary="Translate a batch of texts with decoding options")
async def translate(req: TranslateRequest, settings: SettingsDep, registry: RegistryDep) -> Any:
    start = time.perf_counter()
    check_texts(req.texts, settings, field="texts")
    entry = _select_model(registry, req)
    if req.return_attention and not entry.translator.has_attention:
        raise ApiError(400, f"return_attention: model {entry.name} has no attention")
    if req.format == "html" and req.return_attention:
        raise ApiError(400, "return_attention: not available with format html")
    options = decode_options(settings, entry, beam_size=req.beam_size, nbest=req.nbest,
                             length_penalty=req.length_penalty, domain=req.domain)
    budget = RequestBudget(settings, field="texts", n_texts=len(req.texts))
    tokens = await budget.charge(entry.translator, req.texts, indices=range(len(req.texts)),
                                 fmt=req.format, beam_size=options.beam_size,
                                 on_gone=entry.batcher.count_gone,
                                 pricing=entry.pricing)
    # Attention is (T, S) per text. Past the model's input limit a text is split and the matrix
    # grows with the square of its length (a 3000-subword text: 9M numbers), so a request
    # holding such a text gets no attention rather than exhausting memory.
    want_attention = (req.return_attention
                      and max(tokens, default=0) <= entry.translator.max_input_tokens)
    options = dataclasses.replace(options, return_attention=want_attention,
                                  terms=tuple(req.protect),
                                  glossary=tuple(sorted(req.glossary.items())))
    if req.format == "html":
        return await _translate_html(req, entry, options, settings, start)
    result = await translate_texts(entry, req.texts, options, settings, tokens)
    results = []
    for tr in result.translations:
        best = tr.candidates[0]
        attention = None
        if req.return_attention and best.attention is not None:
            attention = AttentionResponse(source_tokens=list(tr.source_tokens),
                                          target_tokens=list(best.tokens),
                                          weights=[list(row) for row in best.attention])
        results.append(TextResult(
            text=best.text,
            score=best.score if req.return_scores else None,
            candidates=[CandidateResponse(text=c.text,
                                          score=c.score if req.return_scores else None)
                        for c in tr.candidates] if req.nbest > 1 else [],
            attention=attention,
            warnings=list(tr.warnings) or None,
        ))
    return _response(req, entry, options, results, result, start)


async def _translate_html(req: TranslateRequest, entry: ModelEntry, options: DecodeOptions,
                          settings: ServiceSettings, start: float) -> TranslateResponse:
    """format=html: candidates' texts only (scores and attention belong to the blocks)."""
    outputs, result = await translate_formatted(entry, req.texts, "html", options, settings)
    results = [TextResult(text=cands[0],
                          candidates=[CandidateResponse(text=c) for c in cands]
                          if req.nbest > 1 else [])
               for cands in outputs]
    return _response(req, entry, options, results, result, start)


def _response(req: TranslateRequest, entry: ModelEntry, options: DecodeOptions,
              results: list[TextResult], result: BatchResult, start: float) -> TranslateResponse:
    return TranslateResponse(
        model=entry.name, domain=options.domain, source=req.source, target=req.target,
        results=results,
        timing=Timing(queue_ms=round(result.queue_s * 1000, 3),
                      compute_ms=round(result.compute_s * 1000, 3),
                      total_ms=round((time.perf_counter() - start) * 1000, 3),
                      batch_texts=result.batch_texts))


def _select_model(registry: ModelRegistry, req: TranslateRequest) -> ModelEntry:
    """The model `req` names, or its pair's default; a 400 naming the field otherwise."""
    if req.model is None:
        try:
            return registry.get(req.source, req.target)
        except UnknownPair:
            pairs = ", ".join(f"{s}-{t}" for s, t in registry.pairs()) or "none"
            raise ApiError(400, f"source/target: no model translates {req.source}->{req.target} "
                                f"(loaded: {pairs})") from None
    entry = registry.models.get(req.model)
    if entry is None:
        raise ApiError(400, f"model: no model named {req.model!r} is loaded (loaded: "
                            f"{', '.join(registry.models) or 'none'}; see /v1/models)")
    if entry.pair != (req.source, req.target):
        raise ApiError(400, f"model: {entry.name} translates {entry.pair[0]}->{entry.pair[1]}, "
                            f"not {req.source}->{req.target}")
    return entry
