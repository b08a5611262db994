"""Tests for nmt.lm.config: shipped LM configs load; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nmt.config import ConfigError
from nmt.lm.config import LMConfig, lm_config_from_dict, load_lm_config

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
LM_CONFIGS = sorted(p for p in CONFIG_DIR.glob("*.yaml")
                    if (yaml.safe_load(p.read_text()) or {}).get("kind") == "lm")


def test_the_issue_configs_are_lm_configs() -> None:
    names = {p.name for p in LM_CONFIGS}
    assert {"char-lm-en.yaml", "lm-en.yaml"} <= names


@pytest.mark.parametrize("path", LM_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_lm_config_loads_and_comments_every_key(path: Path) -> None:
    cfg = load_lm_config(path, ["model.cell=gru", "train.bptt=70"])
    assert isinstance(cfg, LMConfig) and cfg.model.cell == "gru" and cfg.train.bptt == 70
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not stripped.endswith(":"):
            assert "#" in line, f"{path.name}: key without a comment: {line!r}"


@pytest.mark.parametrize("raw, key", [
    ({"model": {"cel": "lstm"}}, "model.cel"),
    ({"model": {"cell": "transformer"}}, "model.cell"),
    ({"train": {"bptt": 0}}, "train.bptt"),
    ({"tokenizer": {"type": "bytes"}}, "tokenizer.type"),
])
def test_invalid_values_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        lm_config_from_dict({"data": {"train": "t.txt"}, **raw})


def test_translation_configs_are_refused() -> None:
    with pytest.raises(ConfigError, match="translation config"):
        load_lm_config(CONFIG_DIR / "multi30k-de-en.yaml")


def test_training_text_is_required() -> None:
    with pytest.raises(ConfigError, match="data.train"):
        lm_config_from_dict({})
