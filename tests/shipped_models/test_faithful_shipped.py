"""Every protected span kind survives both directions on every shipped model, and multi-sentence
texts keep one output sentence per input sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmt.text.segment import segment
from nmt.translator import Translator

MODELS = Path(__file__).resolve().parents[2] / "models"
# Served bundles, and the interim ones still in training (models/in-training/, not served).
BUNDLES = sorted(str(p.relative_to(MODELS))
                 for p in [*MODELS.glob("*"), *MODELS.glob("in-training/*")]
                 if (p / "model.pt").is_file())
SPANS = ["https://example.com/news?id=42", "max.muster@example.org", "3,50", "1.000", "12:30",
         "01.12.2026", "😀🎉", "@tom_smith", "#nmt", "`pip install nmt`"]
FRAME = {"de": "Ein Mann sieht {} im Park.", "en": "A man sees {} in the park."}
PARAGRAPH = {"de": "Ein Hund rennt. Eine Katze schläft.\n\nEin Kind lacht.",
             "en": "A dog runs. A cat sleeps.\n\nA child laughs."}


@pytest.fixture(scope="module", params=BUNDLES)
def translator(request: pytest.FixtureRequest) -> Translator:
    return Translator.from_checkpoint(MODELS / request.param)


def test_every_protected_span_kind_is_kept(translator: Translator) -> None:
    texts = [FRAME[translator.src_lang].format(span) for span in SPANS]
    for span, result in zip(SPANS, translator.translate(texts, beam_size=2), strict=True):
        assert span in result.text, (span, result.text)


def test_paragraph_keeps_its_sentences_and_lines(translator: Translator) -> None:
    text = PARAGRAPH[translator.src_lang]
    out = translator.translate([text], beam_size=2)[0].text
    lines = out.split("\n")
    assert len(lines) == 3 and lines[1] == ""
    sentences = [s for s in segment(out, translator.tgt_lang) if s.translate]
    assert len(sentences) == 3, out
