"""Service: one translation request through the micro-batcher, with its failures as API errors."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from nmt.text.markup import parse_html
from service.batching import (
    BatchResult,
    ClientGone,
    DecodeOptions,
    QueueFull,
    TranslationTimeout,
)
from service.errors import ApiError
from service.metrics import CLIENT_CLOSED
from service.model_workers import ModelWorkerFailed, ModelWorkerLost
from service.registry import ModelEntry
from service.settings import ServiceSettings

logger = logging.getLogger("service")


def decode_options(settings: ServiceSettings, entry: ModelEntry, *, beam_size: int | None,
                   nbest: int, length_penalty: float | None = None,
                   return_attention: bool = False, domain: str | None = None,
                   nbest_field: str = "nbest", prefix: str = "") -> DecodeOptions:
    """Checks the options against the configured limits and the entry's domains; names the
    field on failure. `domain` None means the entry's default domain."""
    if beam_size is not None and beam_size > settings.max_beam:
        raise ApiError(400, f"{prefix}beam_size: {beam_size} exceeds the limit of "
                            f"{settings.max_beam}")
    if nbest - 1 > settings.max_alternatives:
        raise ApiError(400, f"{prefix}{nbest_field}: at most {settings.max_alternatives} "
                            f"alternatives are allowed")
    if domain is not None and domain not in entry.domains:
        known = ", ".join(entry.domains) or "none (it was trained without domain tags)"
        raise ApiError(400, f"{prefix}domain: {domain!r} is not a domain of model {entry.name}; "
                            f"its domains: {known}")
    if nbest > 1:
        # n candidates need at least n beams; the model's own default may be smaller.
        default_beam = entry.translator.config.decode.beam_size
        beam_size = max(nbest, beam_size if beam_size is not None else default_beam)
    # The domain is always named, so requests for the default and for that same domain by name
    # share batches, and the response can say which domain translated the texts.
    return DecodeOptions(beam_size=beam_size, nbest=nbest, length_penalty=length_penalty,
                         return_attention=return_attention,
                         domain=entry.default_domain if domain is None else domain)


async def translate_texts(entry: ModelEntry, texts: list[str], options: DecodeOptions,
                          settings: ServiceSettings, tokens: Sequence[int] | None = None
                          ) -> BatchResult:
    """Queues `texts` on the entry's batcher; overload is 503, a timeout 504, a crash 500.
    `tokens`: each text's source subwords when the caller has them (its RequestBudget)."""
    if not texts:
        return BatchResult([], 0.0, 0.0, 0)
    try:
        if tokens is None:
            tokens = entry.translator.count_tokens(texts)
        return await entry.batcher.translate(texts, tokens, options,
                                             timeout_s=settings.request_timeout_s)
    except QueueFull:
        raise ApiError(503, "the server is busy: too many texts waiting; retry shortly",
                       {"Retry-After": "1"}) from None
    except TranslationTimeout:
        raise ApiError(504, f"translation timed out after {settings.request_timeout_s:g} s"
                       ) from None
    except ClientGone:
        # Nobody reads this answer; the metrics middleware counts the request as 499.
        raise ApiError(CLIENT_CLOSED, "the client closed the connection") from None
    except (ModelWorkerLost, ModelWorkerFailed) as err:
        logger.error("model %s: %s", entry.name, err)
        raise ApiError(503, "the model worker translating this request stopped; retry shortly",
                       {"Retry-After": "1"}) from None
    except ApiError:
        raise
    except Exception:
        logger.exception("translation failed on model %s", entry.name)
        raise ApiError(500, "Cannot translate text: internal error") from None


async def translate_formatted(entry: ModelEntry, texts: list[str], fmt: str,
                              options: DecodeOptions, settings: ServiceSettings,
                              tokens: Sequence[int] | None = None
                              ) -> tuple[list[list[str]], BatchResult]:
    """Translates plain or HTML texts: per text its candidates' texts, best first, and the
    batcher's result (timing). `tokens`: each text's source subwords, if known (plain text).

    HTML: each fragment's blocks (block-level text with inline tags taken out) are translated
    together, with word alignment, and put back with every inline tag around its words
    (`nmt.text.markup`). The content of inline <code> is kept verbatim.
    """
    if fmt != "html":
        result = await translate_texts(entry, texts, options, settings, tokens)
        return [[c.text for c in tr.candidates] for tr in result.translations], result
    docs = [parse_html(text) for text in texts]
    blocks = [block for doc in docs for block in doc.blocks]
    terms = tuple(dict.fromkeys([*options.terms, *(t for b in blocks for t in b.protected)]))
    options = dataclasses.replace(options, align=True, terms=terms)
    result = await translate_texts(entry, [b.text for b in blocks], options, settings)
    done = iter(result.translations)
    outputs = []
    for doc in docs:
        mine = [next(done) for _ in doc.blocks]
        n_cands = min((len(tr.candidates) for tr in mine), default=1)
        outputs.append([doc.render([(tr.candidates[k].text, tr.candidates[k].alignment)
                                    for tr in mine]) for k in range(n_cands)])
    return outputs, result
