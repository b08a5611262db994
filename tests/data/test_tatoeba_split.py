"""The Tatoeba split script: no held-out sentence in train, deterministic, committed files clean."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "data" / "scripts" / "split_tatoeba.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("split_tatoeba", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["split_tatoeba"] = module
    spec.loader.exec_module(module)
    return module


split_tatoeba = _load_script()


def _read(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


def _pairs() -> tuple[list[str], list[str]]:
    """Repeated sentences chained across pairs, as Tatoeba has them."""
    de, en = [], []
    for i in range(300):
        de.append(f"Satz {i}.")
        en.append(f"Sentence {i // 3}.")  # three German sentences share one English one
    de += ["Ich bin müde.", "ich bin MÜDE!", "Lauf!"]
    en += ["I'm tired.", "I am tired.", "I'm tired."]  # one group through "I'm tired."
    return de, en


def test_no_held_out_sentence_occurs_in_train() -> None:
    de, en = _pairs()
    split = split_tatoeba.split_pairs(de, en, held_out=20, seed=3)
    assert split_tatoeba.leaks(de, en, split) == []
    assert sorted(split["train"] + split["valid"] + split["test"]) == list(range(len(de)))
    assert 20 <= len(split["test"]) <= 20 + split_tatoeba.MAX_GROUP
    train_keys = {split_tatoeba.sentence_key(en[i]) for i in split["train"]}
    for i in split["test"] + split["valid"]:
        assert split_tatoeba.sentence_key(en[i]) not in train_keys
    tired = [i for i in range(len(de)) if "tired" in en[i]]
    assert len({name for name, lines in split.items() for i in tired if i in lines}) == 1


def test_leaks_are_found() -> None:
    de, en = ["Hallo.", "Hallo!"], ["Hello.", "Hi."]
    assert split_tatoeba.leaks(de, en, {"train": [0], "valid": [1], "test": []})


def test_split_is_deterministic(tmp_path: Path) -> None:
    de, en = _pairs()
    src = tmp_path / "src"
    src.mkdir()
    for lang, lines in (("de", de), ("en", en)):
        split_tatoeba._write(src / f"train.{lang}.gz", lines)
    outputs = []
    for run in ("one", "two"):
        assert split_tatoeba.main(["--src-dir", str(src), "--out-dir", str(tmp_path / run),
                                   "--held-out", "20"]) == 0
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {f"{s}.{lang}.gz" for s in ("train", "valid", "test")
                               for lang in ("de", "en")}


def test_committed_split_is_clean() -> None:
    folder = ROOT / "data" / "tatoeba"
    if not (folder / "train.de.gz").exists():
        pytest.fail("data/tatoeba/ is missing: run data/scripts/split_tatoeba.py")
    sets = {name: (_read(folder / f"{name}.de.gz"), _read(folder / f"{name}.en.gz"))
            for name in ("train", "valid", "test")}
    for de, en in sets.values():
        assert len(de) == len(en)
    assert 1900 <= len(sets["valid"][0]) <= 2100 and 1900 <= len(sets["test"][0]) <= 2100
    assert sum(len(de) for de, _ in sets.values()) == 169_813
    key = split_tatoeba.sentence_key
    train_keys = {("de", key(s)) for s in sets["train"][0]} | {("en", key(s))
                                                               for s in sets["train"][1]}
    for name in ("valid", "test"):
        de, en = sets[name]
        assert not [s for s in de if ("de", key(s)) in train_keys]
        assert not [s for s in en if ("en", key(s)) in train_keys]
