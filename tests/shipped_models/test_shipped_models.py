"""The shipped bundles in models/ load, translate into the right language, and beam >= greedy."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmt.translator import Translator

MODELS = Path(__file__).resolve().parents[2] / "models"
SHIPPED = {
    "multi30k-de-en": ("de", "en", ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.",
                                    "Eine Frau in einem roten Kleid singt auf einer Bühne."]),
    "multi30k-en-de": ("en", "de", ["A man is riding a bike.", "Two dogs are playing in the snow.",
                                    "A woman in a red dress is singing on a stage."]),
}
# Words that only one of the two languages uses often: enough to tell English from German output.
MARKERS = {"en": {"a", "the", "is", "are", "in", "on", "of", "and", "man", "woman", "dogs"},
           "de": {"ein", "eine", "der", "die", "das", "ist", "sind", "im", "auf", "und", "mann"}}


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def shipped(request: pytest.FixtureRequest) -> tuple[str, Translator]:
    bundle = MODELS / request.param
    assert (bundle / "model.pt").is_file(), f"{bundle} is missing: the default models must ship"
    assert (bundle / "MODEL_CARD.md").is_file(), f"{bundle} has no MODEL_CARD.md"
    return request.param, Translator.from_checkpoint(bundle)


def test_bundle_is_small_enough(shipped: tuple[str, Translator]) -> None:
    name, _ = shipped
    size = sum(p.stat().st_size for p in (MODELS / name).iterdir() if p.is_file())
    assert size <= 25 * 2**20


def test_translates_into_the_target_language(shipped: tuple[str, Translator]) -> None:
    name, translator = shipped
    src, tgt, sentences = SHIPPED[name]
    assert (translator.src_lang, translator.tgt_lang) == (src, tgt)
    for result in translator.translate(sentences, beam_size=5):
        words = {w.strip(".,!?").lower() for w in result.text.split()}
        assert result.text.strip(), f"empty translation of {result.source!r}"
        assert len(words & MARKERS[tgt]) > len(words & MARKERS[src] - MARKERS[tgt]), result.text


def test_beam_scores_at_least_greedy(shipped: tuple[str, Translator]) -> None:
    name, translator = shipped
    sentences = SHIPPED[name][2]
    greedy = translator.translate(sentences, beam_size=1, length_penalty=0.0)
    beam = translator.translate(sentences, beam_size=5, length_penalty=0.0)
    assert sum(b.score for b in beam) >= sum(g.score for g in greedy) - 1e-4
