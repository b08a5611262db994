"""Service: document translation: LibreTranslate's POST /translate_file and GET /download_file,
and the native POST /v1/documents, which answers with the translated file itself.

A document is read into text units (`nmt.documents`), its units go through the model's
micro-batcher `SLICE` at a time (so single-sentence requests interleave with a long document),
and the translations are put back into the same format. Reading and writing run off the event
loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.parse
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from nmt.documents.base import Document, DocumentError, Translated
from nmt.documents.formats import MEDIA_TYPES, SLICE, format_for, read_document, suffix_for
from service.deps import (
    DetectorDep,
    GuardDep,
    RegistryDep,
    SettingsDep,
    client_address,
    header_api_key,
    require_access,
)
from service.errors import ApiError
from service.files import FileStore
from service.registry import ModelEntry, ModelRegistry, UnknownPair
from service.settings import ServiceSettings
from service.translation import decode_options, translate_texts
from service.uploads import read_upload

router = APIRouter(tags=["documents"])


def get_store(request: Request) -> FileStore:
    """The app's download store, made on first use (NMT_FILES_DIR, NMT_FILES_TTL_MIN)."""
    store = getattr(request.app.state, "files", None)
    if store is None:
        settings: ServiceSettings = request.app.state.settings
        store = FileStore(settings.files_dir or None, ttl_s=settings.files_ttl_min * 60,
                          max_bytes=settings.files_max_bytes)
        request.app.state.files = store
    return store


async def _form(request: Request) -> Any:
    try:
        return await request.form(max_files=1, max_fields=16)
    except Exception as err:
        if getattr(err, "status_code", None) == 413:
            raise
        raise ApiError(400, "Invalid request: the body is not valid multipart form data "
                            "(send the file as the `file` field)") from None


def _text_field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _read(data: bytes, filename: str, target: str, settings: ServiceSettings
                ) -> Document:
    try:
        fmt = format_for(filename)
        doc = await asyncio.to_thread(read_document, data, fmt, target_lang=target)
    except DocumentError as err:
        raise ApiError(400, f"Invalid request: file: {err}") from None
    if len(doc.texts) > settings.max_document_units:
        raise ApiError(400, f"file: {len(doc.texts)} text units (paragraphs, cues, cells, ...) "
                            f"exceed the limit of {settings.max_document_units} per document "
                            "(NMT_MAX_DOCUMENT_UNITS)")
    if doc.characters() > settings.max_document_chars:
        raise ApiError(400, f"file: {doc.characters()} characters exceed the limit of "
                            f"{settings.max_document_chars} per document "
                            "(NMT_MAX_DOCUMENT_CHARS)")
    return doc


async def _entry(registry: ModelRegistry, detector: Any, doc: Document, source: str,
                 target: str) -> ModelEntry:
    if target not in registry.target_languages():
        raise ApiError(400, f"{target} is not supported")
    if source == "auto":
        sample = " ".join(doc.texts)[:2_000]
        source = (await detector.rank(sample, registry.source_languages(target)))[0][0]
    try:
        return registry.get(source, target)
    except UnknownPair:
        raise ApiError(400, f"{source} is not supported" if source not in
                       registry.source_languages() else
                       f"{target} is not available as a target language from {source}") from None


async def translate_document(entry: ModelEntry, doc: Document, settings: ServiceSettings, *,
                             beam_size: int | None = None, domain: str | None = None) -> bytes:
    """All units of `doc` through the batcher, `SLICE` texts a call, then the file's bytes."""
    options = decode_options(settings, entry, beam_size=beam_size, nbest=1, domain=domain)
    options = dataclasses.replace(options, align=True, terms=doc.terms)
    translations: list[Translated] = []
    for start in range(0, len(doc.texts), SLICE):
        result = await translate_texts(entry, doc.texts[start: start + SLICE], options, settings)
        translations += [(tr.text, tr.candidates[0].alignment) for tr in result.translations]
    try:
        return await asyncio.to_thread(doc.render, translations)
    except DocumentError as err:
        raise ApiError(400, f"Invalid request: file: {err}") from None


def _download_name(filename: str, source: str, target: str) -> str:
    """talk.de.srt -> talk.en.srt; notes.docx -> notes.en.docx."""
    path = PurePath(filename)
    stem = path.stem.removesuffix(f".{source}") if source != "auto" else path.stem
    return f"{stem or 'document'}.{target}{path.suffix.lower()}"


def _attachment(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return (f'attachment; filename="{ascii_name}"; '
            f"filename*=UTF-8''{urllib.parse.quote(filename)}")


@router.post("/translate_file", summary="Translate a file (LibreTranslate-compatible)")
async def translate_file(request: Request, settings: SettingsDep, registry: RegistryDep,
                         guard: GuardDep, detector: DetectorDep) -> dict[str, str]:
    form = await _form(request)
    guard.check(_text_field(form, "api_key") or header_api_key(request),
                client_address(request))
    upload = form.get("file")
    for name in ("source", "target"):
        if not _text_field(form, name):
            raise ApiError(400, f"Invalid request: missing {name} parameter")
    data = await read_upload(upload, settings.max_file_bytes)
    filename = PurePath(getattr(upload, "filename", None) or "document").name
    source, target = _text_field(form, "source"), _text_field(form, "target")
    doc = await _read(data, filename, target, settings)
    entry = await _entry(registry, detector, doc, source, target)
    out = await translate_document(entry, doc, settings)
    name = get_store(request).put(
        out, suffix=suffix_for(doc.fmt), filename=_download_name(filename, source, target),
        media_type=MEDIA_TYPES[doc.fmt])
    return {"translatedFileUrl": str(request.url_for("download_file", name=name))}


@router.get("/download_file/{name}", name="download_file",
            summary="Download a translated file (once; it expires after NMT_FILES_TTL_MIN)")
async def download_file(request: Request, name: str) -> Response:
    stored = await asyncio.to_thread(get_store(request).take, name)
    if stored is None:
        raise ApiError(404, "file not found: it was downloaded already, it expired, or it never "
                            "existed")
    return Response(stored.data, media_type=stored.media_type,
                    headers={"Content-Disposition": _attachment(stored.filename)})


@router.post("/v1/documents", tags=["native"], dependencies=[Depends(require_access)],
             summary="Translate a file; the answer is the translated file")
async def translate_document_native(request: Request, settings: SettingsDep,
                                    registry: RegistryDep, detector: DetectorDep) -> Response:
    form = await _form(request)
    upload = form.get("file")
    target = _text_field(form, "target")
    if not target:
        raise ApiError(400, "target: field required")
    source = _text_field(form, "source") or "auto"
    beam = _text_field(form, "beam_size")
    if beam and not beam.isdigit():
        raise ApiError(400, f"beam_size: {beam!r} is not a whole number")
    data = await read_upload(upload, settings.max_file_bytes)
    filename = PurePath(getattr(upload, "filename", None) or "document").name
    doc = await _read(data, filename, target, settings)
    model = _text_field(form, "model")
    if model:
        entry = registry.models.get(model)
        if entry is None:
            raise ApiError(400, f"model: no model named {model!r}")
        if entry.pair[1] != target or source not in ("auto", entry.pair[0]):
            raise ApiError(400, f"model: {model} translates {entry.pair[0]}->{entry.pair[1]}")
    else:
        entry = await _entry(registry, detector, doc, source, target)
    out = await translate_document(entry, doc, settings, beam_size=int(beam) if beam else None,
                                   domain=_text_field(form, "domain") or None)
    return Response(out, media_type=MEDIA_TYPES[doc.fmt], headers={
        "Content-Disposition": _attachment(_download_name(filename, source, target))})
