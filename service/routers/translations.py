"""Service: the native translation API, POST /v1/translate."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends

from service.deps import RegistryDep, SettingsDep, require_access
from service.errors import ApiError
from service.limits import check_texts
from service.registry import UnknownPair
from service.schemas import (
    ERROR_RESPONSES,
    AttentionResponse,
    CandidateResponse,
    TextResult,
    Timing,
    TranslateRequest,
    TranslateResponse,
)
from service.translation import decode_options, translate_texts

router = APIRouter(prefix="/v1", tags=["native"])


@router.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True,
             responses={**ERROR_RESPONSES,
                        422: {**ERROR_RESPONSES[400], "description": "body violates the schema"}},
             dependencies=[Depends(require_access)],
             summary="Translate a batch of texts with decoding options")
async def translate(req: TranslateRequest, settings: SettingsDep, registry: RegistryDep) -> Any:
    start = time.perf_counter()
    check_texts(req.texts, settings, field="texts")
    try:
        entry = registry.get(req.source, req.target)
    except UnknownPair:
        pairs = ", ".join(f"{s}-{t}" for s, t in sorted(registry.entries)) or "none"
        raise ApiError(400, f"source/target: no model translates {req.source}->{req.target} "
                            f"(loaded: {pairs})") from None
    if req.return_attention and not entry.translator.has_attention:
        raise ApiError(400, f"return_attention: model {entry.name} has no attention")
    want_attention = req.return_attention
    if want_attention:
        # Attention is (T, S) per text. Past the model's input limit a text is split and the
        # matrix grows with the square of its length (a 5000-subword text: 25M numbers), so a
        # request holding such a text gets no attention rather than exhausting memory.
        longest = max(entry.translator.count_tokens(req.texts), default=0)
        want_attention = longest <= entry.translator.max_input_tokens
    options = decode_options(settings, entry, beam_size=req.beam_size, nbest=req.nbest,
                             length_penalty=req.length_penalty, return_attention=want_attention)
    result = await translate_texts(entry, req.texts, options, settings)
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
        ))
    return TranslateResponse(
        model=entry.name, source=req.source, target=req.target, results=results,
        timing=Timing(queue_ms=round(result.queue_s * 1000, 3),
                      compute_ms=round(result.compute_s * 1000, 3),
                      total_ms=round((time.perf_counter() - start) * 1000, 3),
                      batch_texts=result.batch_texts))
