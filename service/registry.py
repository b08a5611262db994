"""Service: the loaded models, one Translator (and its micro-batcher) per language pair."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nmt.translator import Translator
from service.batching import Arrivals, DecodeOptions, MicroBatcher
from service.metrics import ServiceMetrics
from service.settings import ServiceSettings

logger = logging.getLogger("service")


@dataclass
class ModelEntry:
    name: str  # the bundle directory's name, e.g. "multi30k-de-en"
    translator: Translator
    batcher: MicroBatcher

    @property
    def pair(self) -> tuple[str, str]:
        return (self.translator.src_lang, self.translator.tgt_lang)


class UnknownPair(LookupError):
    pass


class ModelRegistry:
    """Maps (src_lang, tgt_lang) to a model entry.

    Args:
        translators: model name -> Translator (real, or a fake in tests).
    """

    def __init__(self, translators: Mapping[str, Any], *, settings: ServiceSettings,
                 metrics: ServiceMetrics, arrivals: Arrivals | None = None):
        self.entries: dict[tuple[str, str], ModelEntry] = {}
        for name, translator in translators.items():
            pair = (translator.src_lang, translator.tgt_lang)
            if pair in self.entries:
                raise ValueError(f"models {self.entries[pair].name} and {name} both translate "
                                 f"{pair[0]}->{pair[1]}; serve one of them")
            self.entries[pair] = ModelEntry(name, translator, _batcher_for(
                translator, name=name, settings=settings, metrics=metrics, arrivals=arrivals))

    @classmethod
    def load(cls, settings: ServiceSettings, metrics: ServiceMetrics,
             arrivals: Arrivals | None = None) -> ModelRegistry:
        translators = {}
        for path in settings.bundle_dirs():
            logger.info("loading model bundle %s", path)
            translators[path.name] = Translator.from_checkpoint(
                path, device=settings.device, quantize=settings.quantize,
                num_threads=settings.num_threads)
        return cls(translators, settings=settings, metrics=metrics, arrivals=arrivals)

    def get(self, src: str, tgt: str) -> ModelEntry:
        try:
            return self.entries[(src, tgt)]
        except KeyError:
            raise UnknownPair(f"{src}->{tgt}") from None

    def source_languages(self, target: str | None = None) -> list[str]:
        return sorted({s for s, t in self.entries if target is None or t == target})

    def target_languages(self, source: str | None = None) -> list[str]:
        return sorted({t for s, t in self.entries if source is None or s == source})

    def close(self) -> None:
        for entry in self.entries.values():
            entry.batcher.close()


def _batcher_for(translator: Any, *, name: str, settings: ServiceSettings,
                 metrics: ServiceMetrics, arrivals: Arrivals | None) -> MicroBatcher:
    def translate(texts: list[str], options: DecodeOptions) -> list[Any]:
        translations = translator.translate(
            texts, beam_size=options.beam_size, nbest=options.nbest,
            length_penalty=options.length_penalty, return_attention=options.return_attention)
        metrics.tokens.labels(name, "target").inc(
            sum(len(t.candidates[0].tokens) for t in translations))
        return translations

    return MicroBatcher(
        translate, name=name, metrics=metrics, enabled=settings.batching,
        max_batch_tokens=settings.max_batch_tokens, max_wait_s=settings.max_wait_ms / 1000.0,
        max_queue=settings.max_queue, arrivals=arrivals)
