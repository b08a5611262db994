"""Tests for nmt.data.dataset: tokenizer cache, joint/separate vocabularies, encoded splits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import nmt.data.dataset as dataset
from nmt.config import TokenizerConfig, config_from_dict
from nmt.data.corpus import ParallelCorpus, ReadStats
from nmt.data.dataset import build_tokenizers, encode_corpus, load_training_data
from nmt.tokenization import EOS_ID


@pytest.fixture
def corpus(toy_pairs_factory: Callable[[int, int], list[tuple[str, str]]]) -> ParallelCorpus:
    pairs = toy_pairs_factory(150, 0)
    return ParallelCorpus([p[0] for p in pairs], [p[1] for p in pairs], ReadStats())


@pytest.fixture
def count_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts SentencePiece trainings done through the dataset module."""
    calls: list[int] = []
    real = dataset.train_tokenizer

    def counting(*args: Any, **kwargs: Any):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset, "train_tokenizer", counting)
    return calls


def test_cache_is_reused(tmp_path: Path, corpus: ParallelCorpus, count_training: list[int]) -> None:
    cfg = TokenizerConfig(type="unigram", vocab_size=40)
    src1, tgt1 = build_tokenizers(cfg, corpus, tmp_path / "spm")
    assert len(count_training) == 1
    model_file = tmp_path / "spm" / "joint.model"
    mtime = model_file.stat().st_mtime_ns
    src2, tgt2 = build_tokenizers(cfg, corpus, tmp_path / "spm")
    assert len(count_training) == 1  # no second training
    assert model_file.stat().st_mtime_ns == mtime
    assert src2.model_proto == src1.model_proto and tgt2.model_proto == tgt1.model_proto


@pytest.mark.parametrize("change", ["data", "settings"])
def test_cache_retrains_when_data_or_settings_change(
    tmp_path: Path, corpus: ParallelCorpus, count_training: list[int], change: str
) -> None:
    cfg = TokenizerConfig(type="unigram", vocab_size=40)
    build_tokenizers(cfg, corpus, tmp_path / "spm")
    if change == "data":
        corpus = ParallelCorpus(corpus.src[:-1] + ["vogel vogel"], corpus.tgt, ReadStats())
    else:
        cfg = TokenizerConfig(type="bpe", vocab_size=40)
    build_tokenizers(cfg, corpus, tmp_path / "spm")
    assert len(count_training) == 2
    build_tokenizers(cfg, corpus, tmp_path / "spm")
    assert len(count_training) == 2  # the new models are cached in turn


def test_joint_vocabulary_is_one_model(tmp_path: Path, corpus: ParallelCorpus) -> None:
    src, tgt = build_tokenizers(TokenizerConfig(vocab_size=60, joint=True), corpus, tmp_path)
    assert src.model_proto == tgt.model_proto
    # both languages' words are in the one vocabulary, so nothing maps to UNK
    assert 1 not in src.encode(["der hund"])[0] + tgt.encode(["the dog"])[0]


def test_separate_vocabularies(tmp_path: Path, corpus: ParallelCorpus) -> None:
    src, tgt = build_tokenizers(TokenizerConfig(type="char", joint=False), corpus, tmp_path)
    assert src.model_proto != tgt.model_proto
    assert {p.name for p in tmp_path.glob("*.model")} == {"src.model", "tgt.model"}
    # "ß" only occurs on the source side
    assert "ß" in {src.id_to_piece(i) for i in range(src.vocab_size)}
    assert "ß" not in {tgt.id_to_piece(i) for i in range(tgt.vocab_size)}


def test_encode_corpus_counts_what_it_filters(tmp_path: Path) -> None:
    src = ["a b c", "", "a " * 30, "a b"]
    tgt = ["c b a", "x", "a", "b a"]
    corpus = ParallelCorpus(src, tgt, ReadStats())
    tok, _ = build_tokenizers(TokenizerConfig(type="char"), corpus, tmp_path)
    encoded = encode_corpus(corpus, tok, tok, max_len=20, max_ratio=3.0)
    assert encoded.src_text == ["a b c", "a b"]
    assert len(encoded) + sum(encoded.stats.counts.values()) == len(src)
    assert encoded.lengths() == [max(len(s), len(t)) + 1
                                 for s, t in zip(encoded.src_ids, encoded.tgt_ids, strict=True)]
    assert EOS_ID not in encoded.src_ids[0]


def test_load_training_data(tmp_path: Path, write_toy_corpus, tiny_config) -> None:
    cfg = config_from_dict(tiny_config(write_toy_corpus(n_train=120, n_valid=10, tsv=True)))
    data = load_training_data(cfg, tmp_path / "run")
    assert len(data.train) == 120 and data.valid is not None and len(data.valid) == 10
    assert (tmp_path / "run" / "spm" / "joint.model").exists()
    assert set(data.fingerprints) == {"train_src", "train_tgt"}
    assert data.src_tokenizer.decode(data.train.src_ids[0]) == data.train.src_text[0]
