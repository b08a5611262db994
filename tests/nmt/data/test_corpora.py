"""Several corpora in one config: weights change per-epoch sampling, tags reach the encoder,
placeholders are learned from shared spans, and every mistake names its key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nmt.config import ConfigError, config_from_dict
from nmt.data.batching import token_batches, weighted_epoch
from nmt.data.dataset import load_training_data
from nmt.tokenization import EOS_ID


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def two_corpora(tmp_path: Path, toy_pairs_factory: Callable[[int, int], list[tuple[str, str]]]
                ) -> dict[str, Any]:
    """`data` config keys for corpora a (120 pairs, tag alpha) and b (40 pairs, tag beta)."""
    out: dict[str, Any] = {"corpora": [], "valid": []}
    for name, n, seed, tag in (("a", 120, 0, "alpha"), ("b", 40, 1, "beta")):
        pairs = toy_pairs_factory(n, seed)
        src = _write(tmp_path / f"{name}.src", [p[0] for p in pairs])
        tgt = _write(tmp_path / f"{name}.tgt", [p[1] for p in pairs])
        out["corpora"].append({"name": name, "src": src, "tgt": tgt, "tag": tag})
        out["valid"].append({"name": f"{name}-valid", "src": src, "tgt": tgt, "tag": tag})
    return out


def test_weights_set_the_sampling_proportions(two_corpora: dict[str, Any],
                                              tiny_config: Callable[..., dict[str, Any]],
                                              tmp_path: Path) -> None:
    two_corpora["corpora"][0]["weight"] = 0.5
    two_corpora["corpora"][1]["weight"] = 2.0
    cfg = config_from_dict(tiny_config(two_corpora))
    data = load_training_data(cfg, tmp_path / "run")
    parts = data.weights()
    assert parts is not None
    (a_start, a_end, _), (b_start, b_end, _) = parts
    for epoch in range(3):
        chosen = weighted_epoch(parts, seed=7, epoch=epoch)
        counts = Counter("a" if a_start <= i < a_end else "b" for i in chosen)
        assert counts == {"a": round(0.5 * (a_end - a_start)), "b": 2 * (b_end - b_start)}
        per_example = Counter(i for i in chosen if b_start <= i < b_end)
        assert set(per_example.values()) == {2}  # weight 2: every b pair exactly twice
        assert len(set(i for i in chosen if i < a_end)) == round(0.5 * (a_end - a_start))
    assert weighted_epoch(parts, seed=7, epoch=0) == weighted_epoch(parts, seed=7, epoch=0)
    assert weighted_epoch(parts, seed=7, epoch=0) != weighted_epoch(parts, seed=7, epoch=1)
    batches = token_batches(data.train.lengths(), max_tokens=300, max_sentences=32, seed=7,
                            indices=weighted_epoch(parts, seed=7, epoch=0))
    assert sorted(i for b in batches for i in b) == sorted(weighted_epoch(parts, seed=7, epoch=0))


def test_plain_weights_keep_plain_epochs(two_corpora: dict[str, Any],
                                         tiny_config: Callable[..., dict[str, Any]],
                                         tmp_path: Path) -> None:
    data = load_training_data(config_from_dict(tiny_config(two_corpora)), tmp_path / "run")
    assert data.weights() is None  # all weights 1: the batches of a single-corpus config


def test_tags_are_the_first_source_token(two_corpora: dict[str, Any],
                                         tiny_config: Callable[..., dict[str, Any]],
                                         tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_config(two_corpora, data={**two_corpora, "default_tag": "beta"}))
    data = load_training_data(cfg, tmp_path / "run")
    tok = data.src_tokenizer
    alpha, beta = tok.piece_to_id("<alpha>"), tok.piece_to_id("<beta>")
    assert alpha is not None and beta is not None and alpha != beta
    for part in data.parts:
        tag = alpha if part.name == "a" else beta
        assert all(data.train.src_ids[i][0] == tag for i in range(part.start, part.end))
    assert [v.name for v in data.valid_sets] == ["a-valid", "b-valid"]
    assert all(ids[0] == beta for ids in data.valid_sets[1].corpus.src_ids)
    assert EOS_ID not in data.train.src_ids[0]  # EOS is added by make_batch, not here


def test_select_valid_puts_that_set_first(two_corpora: dict[str, Any],
                                          tiny_config: Callable[..., dict[str, Any]]) -> None:
    cfg = config_from_dict(tiny_config({**two_corpora, "select_valid": "b-valid"}))
    assert [v.name for v in cfg.data.valid_sets()] == ["b-valid", "a-valid"]


def test_old_single_corpus_config_loads_unchanged(tiny_config: Callable[..., dict[str, Any]],
                                                  write_toy_corpus: Callable[..., dict[str, str]],
                                                  tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_config(write_toy_corpus()))
    assert [c.name for c in cfg.data.train_corpora()] == ["train"]
    data = load_training_data(cfg, tmp_path / "run")
    assert data.weights() is None and len(data.parts) == 1
    assert set(data.fingerprints) == {"train_src", "train_tgt"}  # as bundles always recorded


def test_shared_spans_become_placeholders(tmp_path: Path,
                                          tiny_config: Callable[..., dict[str, Any]]) -> None:
    src = _write(tmp_path / "s", ["ich bin 30 jahre alt", "der hund", "um 12:30 mit 5 hunden"])
    tgt = _write(tmp_path / "t", ["i am 30 years old", "the dog", "with 5 dogs at 12:30"])
    cfg = config_from_dict(tiny_config({"train_src": src, "train_tgt": tgt},
                                       tokenizer={"placeholders": 3, "byte_fallback": True,
                                                  "vocab_size": 400}))
    data = load_training_data(cfg, tmp_path / "run")
    assert data.train.src_text == ["ich bin <x1> jahre alt", "der hund", "um <x1> mit <x2> hunden"]
    assert data.train.tgt_text == ["i am <x1> years old", "the dog", "with <x2> dogs at <x1>"]
    assert data.train.stats.counts["placeholders (kept, masked)"] == 2
    tok = data.src_tokenizer
    assert tok.encode_pieces("<x2>")[-1] == "<x2>"  # one piece
    assert tok.decode(tok.encode(["Ωmega"])[0]) == "Ωmega"  # byte fallback: nothing unknown


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"corpora": [{"name": "a", "src": "x", "tgt": "y", "wieght": 2}]},
         r"unknown key data.corpora\[0\].wieght"),
        ({"corpora": [{"name": "a", "src": "x"}]}, r"data.corpora\[0\]: set src and tgt"),
        ({"corpora": [{"src": "x", "tgt": "y"}]}, r"data.corpora\[0\].name"),
        ({"corpora": [{"name": "a", "src": "x", "tgt": "y"}, {"name": "a", "tsv": "z"}]},
         r"data.corpora\[1\].name: 'a' is used twice"),
        ({"corpora": [{"name": "a", "src": "x", "tgt": "y", "weight": -1}]},
         r"data.corpora\[0\].weight: -1.0 is below the minimum"),
        ({"corpora": [{"name": "a", "src": "x", "tgt": "y", "weight": 0}]},
         "at least one corpus needs a weight above 0"),
        ({"corpora": [{"name": "a", "src": "x", "tgt": "y", "tag": "two words"}]},
         r"data.corpora\[0\].tag"),
        ({"corpora": [{"name": "a", "src": "x", "tgt": "y"}], "default_tag": "news"},
         "data.default_tag: 'news' is not the tag of any training corpus"),
        ({"corpora": [{"name": "a", "src": "x", "tgt": "y", "tag": "t"}],
          "valid": [{"name": "v", "src": "x", "tgt": "y", "tag": "u"}]},
         r"data.valid\[0\].tag: 'u'"),
        ({"corpora": [{"name": "a", "src": "x", "tgt": "y"}],
          "valid": [{"name": "v", "src": "x", "tgt": "y"}], "select_valid": "w"},
         "data.select_valid: 'w'"),
        ({"corpora": [{"name": "a", "src": "x", "tgt": "y"}], "train_src": "x"},
         "either data.corpora or train_src"),
        ({"corpora": "a.tsv"}, "data.corpora: expected a list of mappings"),
        ({"train_src": "x", "train_tgt": "y", "default_tag": "t"},
         "data.default_tag needs a data.corpora"),
    ],
)
def test_config_mistakes_name_their_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": data})


def test_byte_fallback_needs_room_for_the_bytes() -> None:
    with pytest.raises(ConfigError, match="tokenizer.vocab_size: 300 is too small"):
        config_from_dict({"data": {"train_src": "x", "train_tgt": "y"},
                          "tokenizer": {"byte_fallback": True, "vocab_size": 300}})
