"""The language detector: py3langid restricted to the candidate (loaded source) languages."""

from __future__ import annotations

import threading

import pytest

import service.detect as detect
from service.detect import LanguageDetector

DE_EN_FR = ["de", "en", "fr"]

# A labelled sample of what clients send: 1-3 words, names, captions, everyday sentences, mixed
# languages (labelled with the language of most of the words). docs/service.md compares the
# detectors on a larger set of the same kinds.
LABELLED = [
    ("Hello handsome", "en"), ("Guten Morgen", "de"), ("Bonjour", "fr"), ("Danke schön", "de"),
    ("Thank you", "en"), ("Merci beaucoup", "fr"), ("Hund", "de"), ("chien", "fr"),
    ("Ich liebe dich", "de"), ("I love you", "en"), ("Je t'aime", "fr"),
    ("Angela Merkel besuchte gestern Paris.", "de"),
    ("Barack Obama visited Berlin yesterday.", "en"),
    ("Emmanuel Macron a rencontré Olaf Scholz.", "fr"),
    ("Ein Mann mit einem roten Hut sitzt auf einer Bank im Park.", "de"),
    ("A man in a red hat is sitting on a bench in the park.", "en"),
    ("Deux enfants jouent dans la neige devant la maison.", "fr"),
    ("Ich habe das Meeting gecancelt, because I was sick.", "de"),
    ("I said bonjour to everyone and then we went home together.", "en"),
    ("Er sagte nur c'est la vie und ging nach Hause.", "de"),
]


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


def test_hello_handsome_is_english_clearly_ahead(detector):
    ranked = detector.detect("Hello handsome", ["de", "en"])
    assert ranked[0][0] == "en"
    assert ranked[0][1] >= 2 * ranked[1][1]  # no tie, as the old stop-word scorer gave


def test_guten_morgen_is_german(detector):
    assert detector.detect("Guten Morgen", DE_EN_FR)[0][0] == "de"


def test_labelled_sample(detector):
    wrong = [(text, lang, detector.detect(text, DE_EN_FR)[0])
             for text, lang in LABELLED if detector.detect(text, DE_EN_FR)[0][0] != lang]
    assert len(wrong) <= len(LABELLED) // 10, wrong


@pytest.mark.parametrize("text", [
    "a", "ok", "?", "12345", "😀", "   ", "x" * 5000, "lone \ud800 surrogate",
    "Der Hund is very happy aujourd'hui", "The Kindergarten est fermé heute",
])
def test_short_odd_and_mixed_texts_always_answer(detector, text):
    ranked = detector.detect(text, DE_EN_FR)
    assert sorted(lang for lang, _ in ranked) == DE_EN_FR
    confidences = [c for _, c in ranked]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 100.0 for c in confidences)
    assert abs(sum(confidences) - 100.0) < 0.5


def test_only_candidates_appear(detector):
    # English text, but only German and French are loaded: the answer is one of them.
    assert {lang for lang, _ in detector.detect("Hello handsome", ["de", "fr"])} == {"de", "fr"}
    assert detector.detect("Привет, как дела?", ["de", "ru"])[0][0] == "ru"


def test_codes_the_model_does_not_know(detector):
    assert detector.detect("Hello world", ["en", "xx"]) == [("en", 100.0), ("xx", 0.0)]
    assert detector.detect("Hello world", ["yy", "xx"]) == [("xx", 50.0), ("yy", 50.0)]
    assert detector.detect("anything", ["de"]) == [("de", 100.0)]
    assert detector.detect("anything", []) == []


def test_the_model_loads_once_on_first_use_across_threads(monkeypatch):
    loads = []
    real = detect.LanguageIdentifier.from_model_file

    def counting(*args, **kwargs):
        loads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(detect.LanguageIdentifier, "from_model_file", counting)
    fresh = LanguageDetector()
    assert not fresh.loaded
    assert fresh.detect("Hund", ["de"]) == [("de", 100.0)]  # one candidate: nothing loaded
    assert not fresh.loaded
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(
        fresh.detect("Guten Morgen", DE_EN_FR)[0][0])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["de"] * 8
    assert len(loads) == 1
