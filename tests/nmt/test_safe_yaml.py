"""nmt/safe_yaml.py: YAML anchors and aliases are refused at the first one, so an alias bomb
("billion laughs") never expands; every shipped config reads exactly as with yaml.safe_load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nmt.safe_yaml import safe_yaml_load

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def _alias_bomb() -> str:
    """Nine levels of nine aliases: 9^9 = 387 million strings once expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_fails_at_its_first_anchor() -> None:
    bomb = _alias_bomb()
    assert len(bomb.encode()) < 500
    with pytest.raises(yaml.YAMLError) as info:
        safe_yaml_load(bomb)
    err = info.value
    assert isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None
    assert "anchors (&a) are not allowed" in str(err.problem)
    assert err.problem_mark.line == 0


@pytest.mark.parametrize("text, words", [
    ("x: 1\ny: *nowhere\n", "aliases (*nowhere)"),
    ("base: &b {lr: 1}\nother:\n  <<: *b\n", "anchors (&b)"),
    ("items:\n  - &first 3\n", "anchors (&first)"),
])
def test_anchors_aliases_and_merge_keys_are_refused(text: str, words: str) -> None:
    with pytest.raises(yaml.YAMLError, match=None) as info:
        safe_yaml_load(text)
    assert words in str(info.value)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_read_as_with_safe_load(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert safe_yaml_load(text) == yaml.safe_load(text)


def test_ordinary_yaml_still_reads() -> None:
    assert safe_yaml_load("a: 1\nb: [x, 'y']\nc: {d: null}\n") == {
        "a": 1, "b": ["x", "y"], "c": {"d": None}}
    assert safe_yaml_load("") is None
