"""Every shipped model card opens with Hugging Face model-card metadata (YAML front matter):
languages, licence, datasets and metrics with values, so the bundle can be published as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

MODELS = Path(__file__).resolve().parents[2] / "models"
BUNDLES = sorted(p for p in [*MODELS.glob("*"), *MODELS.glob("in-training/*")]
                 if (p / "model.pt").is_file())


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_card_has_hugging_face_metadata(bundle: Path) -> None:
    text = (bundle / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "the card must open with YAML front matter"
    meta = yaml.safe_load(text.split("---\n")[1])
    config = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
    assert meta["language"] == [config["data"]["src_lang"], config["data"]["tgt_lang"]]
    assert meta["pipeline_tag"] == "translation" and meta["license"] and meta["datasets"]
    (index,) = meta["model-index"]
    assert index["name"] == bundle.name
    values = [m["value"] for r in index["results"] for m in r["metrics"]]
    assert values and all(isinstance(v, (int, float)) and 0 < v < 100 for v in values)
    # The figures in the metadata are the ones the card's own score table shows.
    for value in values:
        assert f"{value}" in text.split("---\n", 2)[2]
