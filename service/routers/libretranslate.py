"""Service: the LibreTranslate-compatible API (/translate, /detect, /languages, /frontend/settings).

Existing LibreTranslate clients work unchanged: the same fields (JSON or form-encoded), the same
response shapes and the same error statuses and messages.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from service.deps import (
    GuardDep,
    RegistryDep,
    SettingsDep,
    client_address,
    header_api_key,
)
from service.detect import detect_language, language_name
from service.errors import ApiError, describe_validation_errors
from service.limits import BodyTooLarge, check_texts
from service.markup import parse_html
from service.registry import ModelRegistry
from service.schemas import (
    ERROR_RESPONSES,
    DetectedLanguage,
    DetectRequest,
    LanguageResponse,
    LibreTranslateRequest,
    LibreTranslateResponse,
)
from service.translation import decode_options, translate_texts

router = APIRouter(tags=["LibreTranslate-compatible"])

def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema},
        "application/x-www-form-urlencoded": {"schema": schema},
    }}}


def _has_non_utf8_field(form: Any, raw: bytes) -> bool:
    """True when a multipart text field was not valid UTF-8. Starlette decodes such a part as
    Latin-1 instead of refusing it; the UTF-8 encoding of that text then differs from the bytes
    sent (every invalid sequence has a byte >= 0x80), so it is not found in the raw body."""
    return any(isinstance(v, str) and v.encode("utf-8", "surrogatepass") not in raw
               for _, v in form.multi_items())


async def _read_fields(request: Request) -> dict[str, Any]:
    """The request's fields from a JSON object or from form data, as LibreTranslate accepts."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # The form parsers turn bad bytes into other characters that we would translate.
        raw = await request.body()  # bounded by BodySizeLimitMiddleware; form() reuses it
        if ctype == "application/x-www-form-urlencoded":
            try:
                urllib.parse.unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "Invalid request: the body is not valid UTF-8") from None
        try:
            form = await request.form()
        except BodyTooLarge:
            raise
        except Exception:
            raise ApiError(400, "Invalid request: the body is not valid form data") from None
        if ctype == "multipart/form-data" and _has_non_utf8_field(form, raw):
            raise ApiError(400, "Invalid request: a form field is not valid UTF-8")
        fields: dict[str, Any] = {}
        for key in form:
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            if key == "q" and len(values) > 1:  # q=a&q=b: a list, as in JSON
                fields[key] = values
            elif values:
                fields[key] = values[0]
        return fields
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(400, "Invalid request: the body is not valid UTF-8") from None
    except json.JSONDecodeError as err:
        raise ApiError(400, f"Invalid request: the body is not valid JSON ({err.msg} at "
                            f"position {err.pos})") from None
    except (RecursionError, ValueError):
        # json.loads recurses per nesting level and refuses integers over 4300 digits.
        raise ApiError(400, "Invalid request: the body is not valid JSON (nested too deeply "
                            "or a number too large)") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid request: the body must be a JSON object")
    return data


def _validated(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        raise ApiError(400, describe_validation_errors(err.errors(), prefix="Invalid request: ")
                       ) from None


def _resolve_sources(texts: list[str], source: str, target: str,
                     registry: ModelRegistry) -> tuple[list[str], list[DetectedLanguage] | None]:
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
        if len(candidates) == 1:
            detected.append(DetectedLanguage(language=candidates[0], confidence=100.0))
        else:
            lang, confidence = detect_language(text, candidates)[0]
            detected.append(DetectedLanguage(language=lang, confidence=confidence))
    return [d.language for d in detected], detected


@router.post("/translate", response_model=LibreTranslateResponse, response_model_exclude_none=True,
             responses=ERROR_RESPONSES, openapi_extra=_body_schema(LibreTranslateRequest),
             summary="Translate text (LibreTranslate-compatible)")
async def translate(request: Request, settings: SettingsDep, registry: RegistryDep,
                    guard: GuardDep) -> Any:
    fields = await _read_fields(request)
    guard.check(fields.get("api_key") or header_api_key(request), client_address(request))
    for name in ("q", "source", "target"):
        if not fields.get(name):
            raise ApiError(400, f"Invalid request: missing {name} parameter")
    req: LibreTranslateRequest = _validated(LibreTranslateRequest, fields)
    batch = isinstance(req.q, list)
    texts = list(req.q) if isinstance(req.q, list) else [req.q]
    check_texts(texts, settings, field="q", prefix="Invalid request: ")
    sources, detected = _resolve_sources(texts, req.source, req.target, registry)

    nbest = 1 + req.alternatives
    outputs: list[list[str]] = [[] for _ in texts]  # per text: best first, then alternatives

    async def run_group(src: str) -> None:
        entry = registry.get(src, req.target)
        options = decode_options(settings, entry, beam_size=None, nbest=nbest,
                                 nbest_field="alternatives", prefix="Invalid request: ")
        indices = [i for i, s in enumerate(sources) if s == src]
        if req.format == "html":
            docs = [parse_html(texts[i]) for i in indices]
            units = [u for doc in docs for u in doc.texts]
        else:
            units = [texts[i].strip() for i in indices]
        todo = [u for u in units if u]
        result = await translate_texts(entry, todo, options, settings)
        done = iter(result.translations)
        cands = [[c.text for c in next(done).candidates] if u else [""] for u in units]
        if req.format == "html":
            offset = 0
            for i, doc in zip(indices, docs, strict=True):
                mine = cands[offset:offset + len(doc.texts)]
                offset += len(doc.texts)
                outputs[i] = [doc.render([c[min(k, len(c) - 1)] for c in mine])
                              for k in range(max([len(c) for c in mine] or [1]))]
        else:
            for i, c in zip(indices, cands, strict=True):
                outputs[i] = c

    await asyncio.gather(*(run_group(src) for src in sorted(set(sources))))
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
                 guard: GuardDep) -> Any:
    fields = await _read_fields(request)
    guard.check(fields.get("api_key") or header_api_key(request), client_address(request))
    if not fields.get("q"):
        raise ApiError(400, "Invalid request: missing q parameter")
    req: DetectRequest = _validated(DetectRequest, fields)
    texts = list(req.q) if isinstance(req.q, list) else [req.q]
    check_texts(texts, settings, field="q", prefix="Invalid request: ")
    ranked = detect_language(" ".join(texts), registry.source_languages())
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
    pairs = sorted(registry.entries)
    src, tgt = pairs[0] if pairs else ("auto", "auto")
    return {
        "charLimit": settings.max_request_chars,
        "frontendTimeout": 500,
        "apiKeys": guard.key_required,
        "keyRequired": guard.key_required,
        "suggestions": False,
        "filesTranslation": False,
        "supportedFilesFormat": [],
        "language": {"source": {"code": src, "name": language_name(src)},
                     "target": {"code": tgt, "name": language_name(tgt)}},
    }
