"""Model descriptions: the model card's first paragraph, else words for the domain tags."""

from __future__ import annotations

from pathlib import Path

from service.model_cards import card_scores, card_summary, describe_domains, read_card

REPO = Path(__file__).resolve().parents[2]


def test_summary_is_the_first_paragraph_after_the_title(tmp_path):
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card: x\n\n<!-- generated -->\nTranslates **news** and\n"
                    "[short](https://example.org) `captions`.\n\n| a | b |\n\nMore text.\n")
    assert card_summary(card) == "Translates news and short captions."
    card.write_text("# Title only\n\n| table | only |\n|---|---|\n")
    assert card_summary(card) is None
    card.write_text("Word " * 500)
    summary = card_summary(card)
    assert summary is not None and len(summary) <= 400 and summary.endswith("…")
    assert card_summary(tmp_path / "missing.md") is None


def test_the_shipped_caption_models_say_they_are_for_captions():
    for name in ("multi30k-de-en", "multi30k-en-de"):
        bundle = REPO / "models" / name
        if not bundle.is_dir():
            continue
        card = read_card(bundle, src="de", tgt="en", domains=[], metadata={"parameters": 7})
        assert "caption" in card.description
        assert card.file_bytes == (bundle / "model.pt").stat().st_size
        assert card.parameters == 7


def test_description_from_domains_without_a_card(tmp_path):
    assert describe_domains("de", "en", ["general", "caption"]) == (
        "German → English for general-purpose text and short image captions "
        "(domains: general, caption).")
    assert describe_domains("en", "de", ["caption"]) == (
        "English → German for short image captions (domains: caption).")
    assert "'legal' domain" in describe_domains("de", "en", ["legal"])
    assert "no model card" in read_card(tmp_path, src="de", tgt="en", domains=[],
                                        metadata={}).description
    assert read_card(None, src="de", tgt="en", domains=[], metadata={}).file_bytes is None


def test_front_matter_is_not_the_summary(tmp_path):
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("---\nlanguage:\n- de\nlicense: mit\n---\n\n# Model card\n\nFor letters.\n")
    assert card_summary(card) == "For letters."


def test_scores_come_from_the_card_metadata():
    card = REPO / "models" / "multi30k-de-en" / "MODEL_CARD.md"
    scores = card_scores(card)
    assert scores["Multi30k task 1 test_2016_flickr test"]["BLEU (beam 5)"] == 41.2
