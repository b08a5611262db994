"""Service: the LibreTranslate-compatible API (/translate, /detect, /languages, /frontend/settings,
/suggest).

Existing LibreTranslate clients work unchanged: the same fields (JSON, form-encoded or in the
query string), the same response shapes and the same error statuses and messages. /translate
uses each pair's default model (see service/registry.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from nmt.documents.formats import SUFFIXES
from service.batching import DecodeOptions
from service.cost import RequestBudget
from service.deps import (
    DetectorDep,
    GuardDep,
    RegistryDep,
    SettingsDep,
    client_address,
    header_api_key,
)
from service.detect import LanguageDetector
from service.errors import ApiError, describe_validation_errors
from service.fields import read_fields
from service.languages import language_name
from service.limits import check_texts
from service.registry import ModelEntry, ModelRegistry
from service.schemas import (
    ERROR_RESPONSES,
    DetectedLanguage,
    DetectRequest,
    LanguageResponse,
    LibreTranslateRequest,
    LibreTranslateResponse,
)
from service.translation import decode_options, translate_formatted

router = APIRouter(tags=["LibreTranslate-compatible"])


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    # Not required: the fields may come in the query string instead (body fields win).
    return {"requestBody": {"required": False, "content": {
        "application/json": {"schema": schema},
        "application/x-www-form-urlencoded": {"schema": schema},
    }}}


def _validated(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        raise ApiError(400, describe_validation_errors(err.errors(), prefix="Invalid request: ")
                       ) from None


async def _resolve_sources(texts: list[str], source: str, target: str, registry: ModelRegistry,
                           detector: LanguageDetector
                           ) -> tuple[list[str], list[DetectedLanguage] | None]:
    """The source language of each text, and what was detected when source is `auto`."""
    if target not in registry.target_languages():
        raise ApiError(400, f"{target} is not supported")
    if source != "auto":
        if source not in registry.source_languages():
            raise ApiError(400, f"{source} is not supported")
        if target not in registry.target_languages(source):
            raise ApiError(400, f"{language_name(target)} ({target}) is not available as a "
                                f"target language from {language_name(source)} ({source})")
        return [source] * len(texts), None
    candidates = registry.source_languages(target)
    detected = []
    for text in texts:
        lang, confidence = (await detector.rank(text, candidates))[0]
        detected.append(DetectedLanguage(language=lang, confidence=confidence))
    return [d.language for d in detected], detected


@router.post("/translate", response_model=LibreTranslateResponse, response_model_exclude_none=True,
             responses=ERROR_RESPONSES, openapi_extra=_body_schema(LibreTranslateRequest),
             summary="Translate text (LibreTranslate-compatible)")
async def translate(request: Request, settings: SettingsDep, registry: RegistryDep,
                    guard: GuardDep, detector: DetectorDep) -> Any:
    fields = await read_fields(request)
    guard.check(fields.get("api_key") or header_api_key(request), client_address(request))
    for name in ("q", "source", "target"):
        if not fields.get(name):
            raise ApiError(400, f"Invalid request: missing {name} parameter")
    req: LibreTranslateRequest = _validated(LibreTranslateRequest, fields)
    batch = isinstance(req.q, list)
    texts = list(req.q) if isinstance(req.q, list) else [req.q]
    check_texts(texts, settings, field="q", prefix="Invalid request: ")
    sources, detected = await _resolve_sources(texts, req.source, req.target, registry,
                                               detector)

    nbest = 1 + req.alternatives
    outputs: list[list[str]] = [[] for _ in texts]  # per text: best first, then alternatives
    # One group per source language, each with its pair's default model and default domain;
    # every group is priced, within one budget, before any is queued.
    budget = RequestBudget(settings, field="q", n_texts=len(texts), prefix="Invalid request: ")
    groups = []
    for src in sorted(set(sources)):
        entry = registry.get(src, req.target)
        options = decode_options(settings, entry, beam_size=None, nbest=nbest,
                                 nbest_field="alternatives", prefix="Invalid request: ")
        indices = [i for i, s in enumerate(sources) if s == src]
        tokens = await budget.charge(entry.translator, [texts[i] for i in indices],
                                     indices=indices, fmt=req.format,
                                     beam_size=options.beam_size,
                                     on_gone=entry.batcher.count_gone,
                                     pricing=entry.pricing)
        groups.append((entry, options, indices, tokens))

    async def run_group(entry: ModelEntry, options: DecodeOptions, indices: list[int],
                        tokens: list[int]) -> None:
        translated, _ = await translate_formatted(entry, [texts[i] for i in indices],
                                                  req.format, options, settings,
                                                  tokens if req.format == "text" else None)
        for i, candidates in zip(indices, translated, strict=True):
            outputs[i] = candidates

    await asyncio.gather(*(run_group(*group) for group in groups))
    best = [o[0] if o else "" for o in outputs]
    alts = [o[1:nbest] for o in outputs]
    return LibreTranslateResponse(
        translatedText=best if batch else best[0],
        alternatives=(alts if batch else alts[0]) if req.alternatives else None,
        detectedLanguage=(detected if batch else detected[0]) if detected else None,
    )


@router.post("/detect", response_model=list[DetectedLanguage], responses=ERROR_RESPONSES,
             openapi_extra=_body_schema(DetectRequest),
             summary="Detect the language of text, among the loaded source languages")
async def detect(request: Request, settings: SettingsDep, registry: RegistryDep,
                 guard: GuardDep, detector: DetectorDep) -> Any:
    fields = await read_fields(request)
    guard.check(fields.get("api_key") or header_api_key(request), client_address(request))
    if not fields.get("q"):
        raise ApiError(400, "Invalid request: missing q parameter")
    req: DetectRequest = _validated(DetectRequest, fields)
    texts = list(req.q) if isinstance(req.q, list) else [req.q]
    check_texts(texts, settings, field="q", prefix="Invalid request: ")
    ranked = await detector.rank(" ".join(texts), registry.source_languages())
    return [DetectedLanguage(language=lang, confidence=conf) for lang, conf in ranked]


@router.get("/languages", response_model=list[LanguageResponse],
            summary="Languages and the targets each can be translated to")
async def languages(registry: RegistryDep) -> Any:
    codes = sorted(set(registry.source_languages()) | set(registry.target_languages()))
    return [LanguageResponse(code=c, name=language_name(c), targets=registry.target_languages(c))
            for c in codes]


@router.get("/frontend/settings", summary="Settings LibreTranslate front-ends read")
async def frontend_settings(settings: SettingsDep, registry: RegistryDep, guard: GuardDep
                            ) -> dict[str, Any]:
    pairs = registry.pairs()
    src, tgt = pairs[0] if pairs else ("auto", "auto")
    return {
        "charLimit": settings.max_request_chars,
        "frontendTimeout": 500,
        "apiKeys": guard.key_required,
        "keyRequired": guard.key_required,
        "suggestions": False,
        "filesTranslation": True,
        "supportedFilesFormat": sorted(SUFFIXES),
        "language": {"source": {"code": src, "name": language_name(src)},
                     "target": {"code": tgt, "name": language_name(tgt)}},
        # Not LibreTranslate's: the limits of POST /v1/translate, for this service's web page.
        "maxBeam": settings.max_beam,
        "maxAlternatives": settings.max_alternatives,
    }


@router.post("/suggest", status_code=403, responses={403: ERROR_RESPONSES[403]},
             summary="Suggest a better translation (disabled, as LibreTranslate answers then)")
async def suggest() -> Any:
    # LibreTranslate's answer when it runs without --suggestions; /frontend/settings says so too.
    raise ApiError(403, "Suggestions are disabled on this server.")
