"""Sentence segmentation: nothing is lost, separators come back byte for byte, tricky cases."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.text import segment as segment_module
from nmt.text.segment import Segment, segment, split_clauses

# Real sentences, tricky ones included, that end a sentence wherever they stand.
SENTENCES = {
    "de": [
        "Der Hund bellt.",
        "Wie geht es dir?",
        "Hilfe!",
        "Am 3. Oktober feiern wir den Tag der Deutschen Einheit.",
        "Der 2. Platz ging an Anna.",
        "Das war im 19. Jahrhundert.",
        "Wir brauchen z. B. Mehl, Zucker und Eier.",
        "Er kommt morgen, d. h. am Freitag.",
        "Dr. Müller hat heute Sprechstunde.",
        "Die Bestellung Nr. 4711 ist unterwegs.",
        "Ein Kaffee kostet 3,50 €.",
        "Es kamen über 1.000 Besucher.",
        "Der Zug fährt um 12.30 Uhr ab.",
        "Die Inflation lag bei 3.5%.",
        "Mehr Infos unter www.example.com.",
        "Er sagte: „Ich komme morgen.“",
        "Ich liebe Pizza 🍕 und Pasta 🍝.",
    ],
    "en": [
        "The dog barks.",
        "How are you?",
        "Help!",
        "Mr. Smith went to Washington.",
        "The U.S. economy grew last year.",
        "We need fruit, e.g. apples and pears.",
        "Use a strong password, i.e. one with symbols.",
        "The trip takes approx. three hours.",
        "The coffee costs $3.50.",
        "Inflation was 3.5% last year.",
        "He finished 2nd in the race.",
        "Write to john.doe@example.com.",
        'He said, "I will come tomorrow."',
        "I love pizza 🍕 and pasta 🍝.",
    ],
}

BLANKS = st.text(alphabet=" \t", max_size=3)
LINE_BREAKS = st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=3)


@st.composite
def separator(draw: st.DrawFn, *, edge: bool) -> str:
    """Whitespace between two sentences, or (edge) before the first or after the last one:
    blanks on one line, or line breaks with blank or whitespace-only lines between."""
    if draw(st.booleans()):
        return draw(BLANKS if edge else st.text(alphabet=" \t", min_size=1, max_size=4))
    breaks = draw(LINE_BREAKS)
    return draw(BLANKS) + "".join(b + draw(BLANKS) for b in breaks)


@st.composite
def document(draw: st.DrawFn) -> tuple[str, str, list[Segment]]:
    """(lang, text, segments): a text built from pool sentences and random separators, and the
    segments it must give."""
    lang = draw(st.sampled_from(sorted(SENTENCES)))
    sentences = draw(st.lists(st.sampled_from(SENTENCES[lang]), max_size=6))
    seps = [draw(separator(edge=True))]
    seps += [draw(separator(edge=False)) for _ in sentences[1:]]
    seps += [draw(separator(edge=True))] if sentences else []
    expected = [Segment(seps[0], False)] if seps[0] else []
    for sentence, sep in zip(sentences, seps[1:], strict=True):
        expected += [Segment(sentence, True)] + ([Segment(sep, False)] if sep else [])
    return lang, "".join(s.text for s in expected), expected


@settings(max_examples=300, deadline=None)
@given(document())
def test_sentences_and_separators_come_back_exactly(doc: tuple[str, str, list[Segment]]) -> None:
    lang, text, expected = doc
    got = segment(text, lang)
    assert "".join(s.text for s in got) == text
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.one_of(st.sampled_from(list(" \t\r\n.!?…„“»«\"'AaZz3,")),
                                  st.characters())),
       st.sampled_from(["de", "en", "xx"]))
def test_any_text_joins_back_and_sentences_are_trimmed(text: str, lang: str) -> None:
    got = segment(text, lang)
    assert "".join(s.text for s in got) == text
    for seg in got:
        assert seg.text
        if seg.translate:
            assert seg.text == seg.text.strip()
            assert not re.search(r"[\r\n]", seg.text)
        else:
            assert seg.text.isspace()
    assert all(a.translate or b.translate for a, b in pairwise(got))  # separators merged


@pytest.mark.parametrize(
    ("lang", "sentences"),
    [
        ("de", ["Wir brauchen z. B. Mehl, Zucker und Eier.", "Dann backen wir."]),
        ("de", ["Das gilt z.B. auch für Kinder."]),
        ("de", ["Er kommt morgen, d. h. am Freitag.", "Wir freuen uns."]),
        ("de", ["Ich habe mit Dr. med. Weber gesprochen.", "Er war sehr freundlich."]),
        ("de", ["Die Fahrt dauert ca. drei Stunden.", "Wir fahren um acht los."]),
        ("de", ["Das Paket kommt morgen bzw. übermorgen."]),
        ("de", ["Der Preis beträgt inkl. MwSt. 20 Euro."]),
        ("de", ["Der 2. Platz ging an Anna.", "Sie jubelte."]),
        ("de", ["Er wohnt im 5. Stock.", "Der Aufzug ist leider kaputt."]),
        ("de", ["Zum 100. Geburtstag kam die ganze Familie."]),
        ("de", ["Friedrich II. war König von Preußen."]),
        ("de", ["Wir leben im Jahr 2024.", "Vieles hat sich verändert."]),
        ("de", ["Ein Kaffee kostet 3,50 €.", "Das ist ziemlich teuer."]),
        ("de", ["Am 01.12.2024 endet die Frist."]),
        ("de", ["Die Rechnung vom 3.4. ist noch offen."]),
        ("de", ["„Kommst du mit?“, fragte sie."]),
        ("de", ["Schreiben Sie an max.mustermann@example.de.", "Wir antworten schnell."]),
        ("en", ["Mr. Smith went to Washington.", "He met the president."]),
        ("en", ["She moved to the U.S. in 2010."]),
        ("en", ["Use a strong password, i.e. one with symbols.", "Never share it."]),
        ("en", ["The trip takes approx. three hours."]),
        ("en", ["The meeting starts at 9 a.m. tomorrow."]),
        ("en", ["The coffee costs $3.50.", "That is expensive."]),
        ("en", ["Version 2.0 is out.", "Update now!"]),
        ("en", ['"Are you coming?" she asked.']),
        ("en", ["He hesitated...", "Then he left."]),
        ("en", ["See https://en.wikipedia.org/wiki/London.", "It has more."]),
    ],
)
def test_tricky_cases_split_where_sentences_end(lang: str, sentences: list[str]) -> None:
    got = segment(" ".join(sentences), lang)
    assert [s.text for s in got if s.translate] == sentences


def test_language_codes_are_normalised_and_unknown_ones_get_english_rules() -> None:
    def sentences(text: str, lang: str) -> list[str]:
        return [s.text for s in segment(text, lang) if s.translate]

    assert sentences("Am 3. Oktober kam er.", "DE-at") == ["Am 3. Oktober kam er."]
    assert sentences("Mr. Smith arrived. He sat down.", "xx") == ["Mr. Smith arrived.",
                                                                  "He sat down."]


def test_empty_and_blank_texts() -> None:
    assert segment("", "de") == []
    assert segment(" \r\n\t\n", "de") == [Segment(" \r\n\t\n", False)]


def test_lone_surrogate_is_kept() -> None:
    text = "Ein \ud800 Zeichen. Noch ein Satz."
    got = segment(text, "de")
    assert [s.text for s in got if s.translate] == ["Ein \ud800 Zeichen.", "Noch ein Satz."]


def test_output_that_cannot_be_aligned_falls_back_to_the_rule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A splitter that alters the text (here: upper-cases it) cannot be mapped back onto the line.
    def altered(lang: str, text: str) -> list[dict[str, object]]:
        return [{"text": text.upper()}]

    monkeypatch.setattr(segment_module.sentencex, "get_sentence_boundaries", altered)
    text = "  Wir sahen z. B. Dr. Weber.\tEr kam um 12.30 Uhr. Der 2. Platz! Gut.  "
    got = segment(text, "de")
    assert "".join(s.text for s in got) == text
    assert [s.text for s in got if s.translate] == [
        "Wir sahen z. B. Dr. Weber.", "Er kam um 12.30 Uhr.", "Der 2. Platz!", "Gut."]


def chars_fit(limit: int) -> Callable[[str], bool]:
    return lambda piece: len(piece) <= limit


def test_split_clauses_keeps_a_sentence_that_fits() -> None:
    assert split_clauses("Kurz; knapp, und gut.", chars_fit(100)) == ["Kurz; knapp, und gut."]


def test_split_clauses_prefers_semicolons_then_comma_before_conjunction() -> None:
    sentence = "Wir haben lange gewartet, aber niemand kam; dann gingen wir, und es regnete."
    assert split_clauses(sentence, chars_fit(50)) == [
        "Wir haben lange gewartet, aber niemand kam;", "dann gingen wir, und es regnete."]
    sentence = "Der Zug kam spät, der Bus fiel aus, und wir liefen nach Hause."
    assert split_clauses(sentence, chars_fit(40)) == [
        "Der Zug kam spät, der Bus fiel aus,", "und wir liefen nach Hause."]
    sentence = "The train was late, the bus never came, and we walked home."
    assert split_clauses(sentence, chars_fit(40)) == [
        "The train was late, the bus never came,", "and we walked home."]


def test_split_clauses_hard_cuts_a_500_word_sentence_without_punctuation() -> None:
    sentence = " ".join(f"wort{i}" for i in range(500))
    pieces = split_clauses(sentence, lambda piece: len(piece.split()) <= 40)
    assert " ".join(pieces) == sentence
    assert [len(p.split()) for p in pieces] == [40] * 12 + [20]


def test_split_clauses_cuts_an_overlong_word_by_characters() -> None:
    word = "Donaudampfschifffahrtsgesellschaftskapitän"
    pieces = split_clauses(f"Der {word} winkt.", chars_fit(10))
    assert "".join(pieces).replace(" ", "") == f"Der{word}winkt."
    assert all(len(p) <= 10 for p in pieces)


WORDS = st.text(alphabet="abcäöß", min_size=1, max_size=12)
PUNCT = st.sampled_from(["", "", "", ",", ";", ":", "."])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(WORDS, PUNCT, st.sampled_from([" ", " ", "  ", "\t"])), min_size=1,
                max_size=40),
       st.sampled_from(["", " und", " and", " aber", " which"]),
       st.integers(min_value=1, max_value=60))
def test_split_clauses_never_drops_a_character(
        words: list[tuple[str, str, str]], conjunction: str, limit: int) -> None:
    sentence = "".join(w + p + s for w, p, s in words).rstrip() + conjunction
    pieces = split_clauses(sentence, chars_fit(limit))
    assert all(len(p) <= limit or len(p) == 1 for p in pieces)
    cursor = 0  # pieces are the sentence's text in order, only cut whitespace between them
    for piece in pieces:
        assert piece and piece == piece.strip()
        start = sentence.index(piece, cursor)
        assert not sentence[cursor:start].strip()
        cursor = start + len(piece)
    assert cursor == len(sentence)
    assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", sentence)


@pytest.mark.parametrize(("text", "sentences"), [
    ("Er ist da. 3 Jungen stehen.", ["Er ist da.", "3 Jungen stehen."]),
    ("Er sah den Hund! 3 Katzen liefen.", ["Er sah den Hund!", "3 Katzen liefen."]),
    ("Am 3. 4 Leute kamen.", ["Am 3. 4 Leute kamen."]),
    ("Der Preis beträgt inkl. MwSt. 20 Euro.", ["Der Preis beträgt inkl. MwSt. 20 Euro."]),
])
def test_german_sentence_opening_with_a_number(text: str, sentences: list[str]) -> None:
    assert [s.text for s in segment(text, "de") if s.translate] == sentences
