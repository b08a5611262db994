"""Protected spans: found, masked with placeholders, restored exactly."""

from __future__ import annotations

import pytest

from nmt.text.protect import find_spans, mask, mask_pair, unmask

CASES = [
    ("Mehr auf https://example.com/news?id=42 heute.", "url", "https://example.com/news?id=42"),
    ("Siehe www.example.org.", "url", "www.example.org"),
    ("Schreib an max.muster@example.co.uk bitte.", "email", "max.muster@example.co.uk"),
    ("Das kostet 3,50 €.", "number", "3,50"),
    ("Es waren 1.000.000 Leute.", "number", "1.000.000"),
    ("Um 12:30 Uhr.", "number", "12:30"),
    ("Am 01.12.2026 oder 2026-12-01.", "number", "01.12.2026"),
    ("Er ist 42.", "number", "42"),
    ("Folge @tom_smith jetzt.", "handle", "@tom_smith"),
    ("Das ist #nmt2026 heute.", "hashtag", "#nmt2026"),
    ("Führe `rm -rf build` aus.", "code", "`rm -rf build`"),
    ("Super 😀🎉 gemacht.", "emoji", "😀🎉"),
    ("Daumen 👍🏽 hoch.", "emoji", "👍🏽"),
]


@pytest.mark.parametrize(("text", "kind", "span"), CASES)
def test_each_kind_is_found_and_round_trips(text: str, kind: str, span: str) -> None:
    found = [(s.kind, s.text) for s in find_spans(text)]
    assert (kind, span) in found
    masked = mask(text, limit=9)
    assert span not in masked.text and "<x1>" in masked.text
    assert unmask(masked.text, masked.originals) == (text, [])


def test_terms_win_and_repeats_share_a_placeholder() -> None:
    masked = mask("Angela Merkel trifft 5 Leute und 5 Hunde.", limit=9, terms=["Angela Merkel"])
    assert masked.text == "<x1> trifft <x2> Leute und <x2> Hunde."
    assert masked.originals == ("Angela Merkel", "5")


def test_limit_leaves_later_spans_as_text() -> None:
    masked = mask("1 2 3", limit=2)
    assert masked.text == "<x1> <x2> 3"


def test_unmask_reports_missing_and_drops_unknown_placeholders() -> None:
    text, missing = unmask("Es kostet <x3> Euro.", ("3,50", "12"))
    assert text == "Es kostet Euro." and missing == ["3,50", "12"]


def test_training_pairs_mask_only_shared_spans_in_source_order() -> None:
    assert mask_pair("Um 2:30 kommt Tom mit 5 Hunden.", "Tom comes with 5 dogs at 2:30.",
                     limit=9) == ("Um <x1> kommt Tom mit <x2> Hunden.",
                                  "Tom comes with <x2> dogs at <x1>.")
    assert mask_pair("Ich habe 3,50 €.", "I have €3.50.", limit=9) is None  # not the same text
