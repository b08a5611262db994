"""The model registry: several models per pair, each pair's default, NMT_DEFAULT_MODELS."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmt.models.kernels import bf16_products_supported
from nmt.translator import Translator
from service.metrics import ServiceMetrics
from service.registry import ModelRegistry, UnknownPair
from service.settings import ServiceSettings


def _registry(translators, **settings) -> ModelRegistry:
    return ModelRegistry(translators, settings=ServiceSettings(models_root="unused", **settings),
                         metrics=ServiceMetrics())


def test_every_model_is_kept_by_name_with_one_default_per_pair(fake):
    translators = {"b-caption": fake("de", "en"), "a-caption": fake("de", "en"),
                   "general": fake("de", "en", domains=("general", "caption")),
                   "single": fake("de", "en", domains=("caption",)), "back": fake("en", "de")}
    registry = _registry(translators)
    assert list(registry.models) == sorted(translators)  # by name
    assert registry.models["general"].translator is translators["general"]  # shared, no copy
    # The most domains wins; among equals, the first name.
    assert registry.get("de", "en").name == "general"
    assert registry.get("en", "de").name == "back"
    assert _registry({k: translators[k] for k in ("b-caption", "a-caption")}
                     ).get("de", "en").name == "a-caption"
    assert registry.pairs() == [("de", "en"), ("en", "de")]
    assert registry.source_languages("en") == ["de"] and registry.target_languages() == ["de", "en"]
    assert [n for n, e in registry.models.items() if registry.is_default(e)] == ["back", "general"]
    with pytest.raises(UnknownPair):
        registry.get("de", "fr")
    # Each model has its own batcher (and so its own worker thread).
    assert len({id(e.batcher) for e in registry.models.values()}) == len(translators)
    registry.close()


def test_default_models_setting(fake, monkeypatch):
    translators = {"caption": fake("de", "en"), "general": fake("de", "en", domains=("g", "c"))}
    monkeypatch.setenv("NMT_DEFAULT_MODELS", "de-en=caption")
    registry = ModelRegistry(translators, settings=ServiceSettings(models_root="unused"),
                             metrics=ServiceMetrics())
    assert registry.get("de", "en").name == "caption"


@pytest.mark.parametrize(("value", "message"), [
    ({"de-en": "missing"}, "NMT_DEFAULT_MODELS: de-en=missing names no loaded model "
                           "(loaded: caption, general)"),
    ({"en-de": "caption"}, "NMT_DEFAULT_MODELS: en-de=caption, but caption translates de-en"),
])
def test_a_default_that_is_not_loaded_or_does_not_fit_is_a_start_up_error(fake, value, message):
    translators = {"caption": fake("de", "en"), "general": fake("de", "en", domains=("g",))}
    with pytest.raises(ValueError) as err:
        _registry(translators, default_models=value)
    assert str(err.value) == message


def test_load_names_models_by_bundle_directory(tiny_bundle: Path, tmp_path: Path):
    card = tmp_path / "tiny-de-en"
    card.mkdir()
    (card / "model.pt").write_bytes((tiny_bundle / "model.pt").read_bytes())
    (card / "MODEL_CARD.md").write_text("# Model card: tiny\n\nA tiny model for tests.\n")
    settings = ServiceSettings(models=[str(card)], num_threads=1)
    registry = ModelRegistry.load(settings, ServiceMetrics())
    entry = registry.get("de", "en")
    assert entry.name == "tiny-de-en"
    assert entry.card.description == "A tiny model for tests."
    assert entry.card.file_bytes == (tiny_bundle / "model.pt").stat().st_size
    registry.close()
    with pytest.raises(ValueError, match="two bundles are named tiny-de-en"):
        ModelRegistry.load(ServiceSettings(models=[str(card), str(tiny_bundle)], num_threads=1),
                           ServiceMetrics())


@pytest.mark.skipif(not bf16_products_supported(),
                    reason="this CPU or torch build has no oneDNN bfloat16 products")
def test_nmt_precision_reaches_the_translator_that_decodes(tiny_bundle: Path) -> None:
    settings = ServiceSettings(models=[str(tiny_bundle)], num_threads=1, precision="bf16",
                               model_processes=0)
    registry = ModelRegistry.load(settings, ServiceMetrics())
    try:
        translator = registry.get("de", "en").translator
        assert isinstance(translator, Translator) and translator.precision == "bf16"
    finally:
        registry.close()
