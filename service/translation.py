"""Service: one translation request through the micro-batcher, with its failures as API errors."""

from __future__ import annotations

import logging

from service.batching import BatchResult, DecodeOptions, QueueFull, TranslationTimeout
from service.errors import ApiError
from service.registry import ModelEntry
from service.settings import ServiceSettings

logger = logging.getLogger("service")


def decode_options(settings: ServiceSettings, entry: ModelEntry, *, beam_size: int | None,
                   nbest: int, length_penalty: float | None = None,
                   return_attention: bool = False, nbest_field: str = "nbest",
                   prefix: str = "") -> DecodeOptions:
    """Checks the options against the configured limits; names the field on failure."""
    if beam_size is not None and beam_size > settings.max_beam:
        raise ApiError(400, f"{prefix}beam_size: {beam_size} exceeds the limit of "
                            f"{settings.max_beam}")
    if nbest - 1 > settings.max_alternatives:
        raise ApiError(400, f"{prefix}{nbest_field}: at most {settings.max_alternatives} "
                            f"alternatives are allowed")
    if nbest > 1:
        # n candidates need at least n beams; the model's own default may be smaller.
        default_beam = entry.translator.config.decode.beam_size
        beam_size = max(nbest, beam_size if beam_size is not None else default_beam)
    return DecodeOptions(beam_size=beam_size, nbest=nbest, length_penalty=length_penalty,
                         return_attention=return_attention)


async def translate_texts(entry: ModelEntry, texts: list[str], options: DecodeOptions,
                          settings: ServiceSettings) -> BatchResult:
    """Queues `texts` on the entry's batcher; overload is 503, a timeout 504, a crash 500."""
    if not texts:
        return BatchResult([], 0.0, 0.0, 0)
    try:
        tokens = sum(entry.translator.count_tokens(texts))
        return await entry.batcher.translate(texts, tokens, options,
                                             timeout_s=settings.request_timeout_s)
    except QueueFull:
        raise ApiError(503, "the server is busy: too many texts waiting; retry shortly",
                       {"Retry-After": "1"}) from None
    except TranslationTimeout:
        raise ApiError(504, f"translation timed out after {settings.request_timeout_s:g} s"
                       ) from None
    except ApiError:
        raise
    except Exception:
        logger.exception("translation failed on model %s", entry.name)
        raise ApiError(500, "Cannot translate text: internal error") from None
