"""Service: the loaded models, by name, each with its micro-batcher; a default model per pair.

Several models may translate the same language pair (a caption model beside a general one). A
request names a model, or gets its pair's default: the one NMT_DEFAULT_MODELS names, else the
model with the most domain tags (a tagged general model over a single-domain one), then the first
by name. Each Translator is loaded once and shared, read-only, by its batcher's lanes; with
model worker processes (NMT_MODEL_PROCESSES, the default), the lanes hand each call to a worker
process instead, and this process's Translator only tokenises and describes the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from nmt.translator import Translation, TranslationModel, Translator
from service.batching import Arrivals, DecodeOptions, MicroBatcher, translate_with
from service.metrics import ServiceMetrics
from service.model_cards import ModelCard, read_card
from service.model_workers import ModelWorkerPool, WorkerSpec
from service.pricing import ModelPricing, PricingProcess
from service.settings import ServiceSettings, usable_cores

logger = logging.getLogger("service")


@dataclass
class ModelEntry:
    name: str  # the bundle directory's name, e.g. "multi30k-de-en"
    translator: TranslationModel
    batcher: MicroBatcher
    card: ModelCard
    domains: list[str]  # the model's domain tags; [] for a model trained without tags
    default_domain: str | None  # the tag used when a request names none; None without tags
    pricing: ModelPricing | None = None  # measures long requests; None: the pricing thread

    @property
    def pair(self) -> tuple[str, str]:
        return (self.translator.src_lang, self.translator.tgt_lang)


class UnknownPair(LookupError):
    pass


class ModelRegistry:
    """The loaded models by name, and the default model of each (source, target) pair.

    Args:
        translators: model name -> Translator (real, or a fake in tests).
        bundle_dirs: model name -> its bundle directory, for the model card and file size;
            models missing here are described from their domain tags.
        workers: model worker processes that run the model calls (of every model in
            `translators`); None: the calls run in this process. Closed with the registry.
        pricing: the process that measures long requests (of every model in `translators`);
            None: a thread of this process does. Closed with the registry.

    Raises:
        ValueError: `settings.default_models` names a model that is not loaded, or one that
            translates another pair (the message names NMT_DEFAULT_MODELS).
    """

    def __init__(self, translators: Mapping[str, TranslationModel], *, settings: ServiceSettings,
                 metrics: ServiceMetrics, arrivals: Arrivals | None = None,
                 bundle_dirs: Mapping[str, Path] | None = None,
                 workers: ModelWorkerPool | None = None,
                 pricing: PricingProcess | None = None):
        bundle_dirs = bundle_dirs or {}
        self.workers = workers
        self.pricing = pricing
        self.models: dict[str, ModelEntry] = {}
        for name in sorted(translators):
            translator = translators[name]
            domains, default_domain = _domains(translator)
            self.models[name] = ModelEntry(
                name, translator,
                _batcher_for(translator, name=name, settings=settings, metrics=metrics,
                             arrivals=arrivals, workers=workers),
                read_card(bundle_dirs.get(name), src=translator.src_lang,
                          tgt=translator.tgt_lang, domains=domains,
                          metadata=dict(translator.metadata)),
                domains, default_domain,
                None if pricing is None else pricing.for_model(name))
        try:
            self.defaults = _choose_defaults(self.models, settings.default_pairs())
        except ValueError:
            self.close()
            raise

    @classmethod
    def load(cls, settings: ServiceSettings, metrics: ServiceMetrics,
             arrivals: Arrivals | None = None) -> ModelRegistry:
        """Loads every bundle `settings` names, each once, and starts the model worker
        processes (NMT_MODEL_PROCESSES) when there are any; ModelWorkerFailed when one of them
        cannot load its models."""
        translators: dict[str, Translator] = {}
        dirs: dict[str, Path] = {}
        for path in settings.bundle_dirs():
            if path.name in dirs:
                raise ValueError(f"two bundles are named {path.name} ({dirs[path.name]} and "
                                 f"{path}); a model's name is its directory's name")
            dirs[path.name] = path
        processes = settings.model_worker_count() if dirs else 0
        workers = None
        pricing = None
        if processes:
            # Launched first: they load while this process loads its own copy.
            cores = usable_cores()  # shared by every model worker of every server process
            threads = settings.num_threads or max(1, cores // (processes * settings.workers))
            workers = ModelWorkerPool(
                WorkerSpec(dirs, settings.device, settings.quantize, threads,
                           settings.precision),
                processes=processes, on_restart=metrics.worker_restarts.inc).launch()
        try:
            for name, path in dirs.items():
                logger.info("loading model bundle %s", path)
                # With worker processes this copy only tokenises and describes: the CPU will do.
                translators[name] = Translator.from_checkpoint(
                    path, device="cpu" if workers is not None else settings.device,
                    quantize=settings.quantize, num_threads=settings.num_threads,
                    precision="fp32" if workers is not None else settings.precision)
            if workers is not None:
                # The HTTP process no longer decodes; measuring long requests leaves it too.
                pricing = PricingProcess({name: t.source for name, t in translators.items()})
                workers.wait_ready()
                pricing.start()
            return cls(translators, settings=settings, metrics=metrics, arrivals=arrivals,
                       bundle_dirs=dirs, workers=workers, pricing=pricing)
        except BaseException:
            if workers is not None:
                workers.close()
            if pricing is not None:
                pricing.close()
            raise

    def get(self, src: str, tgt: str) -> ModelEntry:
        """The default model for `src`->`tgt`; UnknownPair when none translates it."""
        try:
            return self.models[self.defaults[(src, tgt)]]
        except KeyError:
            raise UnknownPair(f"{src}->{tgt}") from None

    def is_default(self, entry: ModelEntry) -> bool:
        return self.defaults.get(entry.pair) == entry.name

    def pairs(self) -> list[tuple[str, str]]:
        return sorted(self.defaults)

    def source_languages(self, target: str | None = None) -> list[str]:
        return sorted({s for s, t in self.defaults if target is None or t == target})

    def target_languages(self, source: str | None = None) -> list[str]:
        return sorted({t for s, t in self.defaults if source is None or s == source})

    def close(self) -> None:
        for entry in self.models.values():
            entry.batcher.close()
        if self.workers is not None:
            self.workers.close()
        if self.pricing is not None:
            self.pricing.close()


def _domains(translator: TranslationModel) -> tuple[list[str], str | None]:
    """The model's domain tags and the one it uses by default (the Translator's own rule: the
    configured default, else the first tag)."""
    domains = list(translator.domains)
    return domains, (translator.default_domain or (domains[0] if domains else None))


def _choose_defaults(models: Mapping[str, ModelEntry], configured: Mapping[tuple[str, str], str]
                     ) -> dict[tuple[str, str], str]:
    """Pair -> default model name: the configured one, else the most domains, then by name."""
    defaults: dict[tuple[str, str], str] = {}
    for (src, tgt), name in configured.items():
        entry = models.get(name)
        if entry is None:
            raise ValueError(f"NMT_DEFAULT_MODELS: {src}-{tgt}={name} names no loaded model "
                             f"(loaded: {', '.join(models) or 'none'})")
        if entry.pair != (src, tgt):
            raise ValueError(f"NMT_DEFAULT_MODELS: {src}-{tgt}={name}, but {name} translates "
                             f"{entry.pair[0]}-{entry.pair[1]}")
        defaults[(src, tgt)] = name
    ranked = sorted(models.values(), key=lambda e: (-len(e.domains), e.name))
    for entry in ranked:
        defaults.setdefault(entry.pair, entry.name)
    return defaults


def _batcher_for(translator: TranslationModel, *, name: str, settings: ServiceSettings,
                 metrics: ServiceMetrics, arrivals: Arrivals | None,
                 workers: ModelWorkerPool | None) -> MicroBatcher:
    def translate(texts: list[str], options: DecodeOptions,
                  abandoned: Callable[[], Collection[int]]) -> list[Translation]:
        if workers is None:
            translations = translate_with(translator, texts, options, abandoned)
        else:
            translations = workers.translate(name, texts, options, abandoned)
        metrics.tokens.labels(name, "target").inc(
            sum(len(t.candidates[0].tokens) for t in translations))
        return translations

    return MicroBatcher(
        translate, name=name, metrics=metrics, enabled=settings.batching,
        max_batch_tokens=settings.batch_token_budget(), slice_tokens=settings.slice_tokens,
        max_wait_s=settings.max_wait_ms / 1000.0, max_queue=settings.max_queue,
        max_client_queue=settings.max_client_queue, arrivals=arrivals,
        lanes=settings.model_lanes, spare_cost=settings.spare_call_cost,
        default_beam=translator.config.decode.beam_size)
