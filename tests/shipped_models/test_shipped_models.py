"""The shipped bundles in models/ load, translate into the right language, and beam >= greedy."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmt.translator import Translator
from service.detect import LanguageDetector

MODELS = Path(__file__).resolve().parents[2] / "models"
# Served bundles, and the interim ones still in training (models/in-training/, not served).
BUNDLES = sorted(str(p.relative_to(MODELS))
                 for p in [*MODELS.glob("*"), *MODELS.glob("in-training/*")]
                 if (p / "model.pt").is_file())
DEFAULTS = ["multi30k-de-en", "multi30k-en-de"]  # the default models must ship
CAPTIONS = {"de": ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.",
                   "Eine Frau in einem roten Kleid singt auf einer Bühne."],
            "en": ["A man is riding a bike.", "Two dogs are playing in the snow.",
                   "A woman in a red dress is singing on a stage."]}
EVERYDAY = {"de": ["Wie spät ist es?", "Ich habe heute keine Zeit.",
                   "Kannst du mir bitte helfen?"],
            "en": ["What time is it?", "I don't have time today.", "Can you help me, please?"]}


@pytest.fixture(scope="module", params=BUNDLES)
def shipped(request: pytest.FixtureRequest) -> tuple[str, Translator]:
    bundle = MODELS / request.param
    assert (bundle / "MODEL_CARD.md").is_file(), f"{bundle} has no MODEL_CARD.md"
    return request.param, Translator.from_checkpoint(bundle)


def test_the_default_models_ship() -> None:
    for name in DEFAULTS:
        assert (MODELS / name / "model.pt").is_file(), f"models/{name} is missing"


def test_bundle_is_small_enough(shipped: tuple[str, Translator]) -> None:
    name, _ = shipped
    size = sum(p.stat().st_size for p in (MODELS / name).iterdir() if p.is_file())
    assert size <= 30 * 2**20  # a bundle is at most 30 MB


def test_translates_into_the_target_language(shipped: tuple[str, Translator]) -> None:
    """Caption and everyday sentences come out non-empty and in the target language, as the
    service's language detector (py3langid, restricted to the two languages) judges it."""
    _, translator = shipped
    src, tgt = translator.src_lang, translator.tgt_lang
    detector = LanguageDetector()
    for domain in translator.domains or [None]:
        sentences = CAPTIONS[src] + EVERYDAY[src]
        for result in translator.translate(sentences, beam_size=5, domain=domain):
            assert result.text.strip(), f"empty translation of {result.source!r}"
        joined = " ".join(r.text for r in translator.translate(sentences, beam_size=5,
                                                                domain=domain))
        best, _ = detector.detect(joined, [src, tgt])[0]
        assert best == tgt, (domain, joined)


def test_beam_scores_at_least_greedy(shipped: tuple[str, Translator]) -> None:
    _, translator = shipped
    sentences = CAPTIONS[translator.src_lang] + EVERYDAY[translator.src_lang]
    greedy = translator.translate(sentences, beam_size=1, length_penalty=0.0)
    beam = translator.translate(sentences, beam_size=5, length_penalty=0.0)
    assert sum(b.score for b in beam) >= sum(g.score for g in greedy) - 1e-4
