"""Toy texts, tiny LM configs, models and bundles for the LM and CLI tests, all seeded."""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

import torch

from nmt.lm.bundle import export_lm_bundle
from nmt.lm.config import LMConfig, lm_config_from_dict
from nmt.lm.model import RecurrentLM, build_lm
from nmt.lm.vocab import SubwordVocab
from nmt.tokenization import Tokenizer, train_tokenizer

PATTERN_LINE = "hello world"
WORDS = ["a", "man", "dog", "runs", "in", "the", "park", "two", "women", "play", "ball", "red"]


def caption_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7))).capitalize() + "."
            for _ in range(n)]


@functools.lru_cache(maxsize=1)
def tiny_spm() -> Tokenizer:
    return train_tokenizer(caption_lines(300, 0), model_type="unigram", vocab_size=40)


def tiny_lm_config(train_path: str, valid_path: str | None = None,
                   **sections: dict[str, Any]) -> LMConfig:
    raw: dict[str, Any] = {
        "name": "tiny-lm",
        "data": {"train": train_path, "valid": valid_path},
        "tokenizer": {"type": "char"},
        "model": {"cell": "lstm", "emb_dim": 16, "hidden": 32, "dropout": 0.0},
        "train": {"seed": 3, "batch_size": 4, "bptt": 12, "epochs": 2, "lr": 0.01,
                  "log_every": 5, "keep_last": 1, "valid_batch_size": 2},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return lm_config_from_dict(raw)


def tiny_lm(vocab_size: int, *, cell: str = "lstm", seed: int = 0) -> RecurrentLM:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        cfg = tiny_lm_config("unused.txt", model={"cell": cell}).model
        model = build_lm(cfg, vocab_size=vocab_size)
        for p in model.parameters():  # larger weights: peaked, varied predictions
            p.data.mul_(3.0)
    return model.eval()


def write_tiny_lm_bundle(out_dir: Path, *, seed: int = 0) -> Path:
    """A subword LM bundle (random weights) over `tiny_spm()`."""
    cfg = tiny_lm_config("unused.txt", tokenizer={"type": "spm"})
    vocab = SubwordVocab(tiny_spm())
    return export_lm_bundle(out_dir, config=cfg, state_dict=tiny_lm(vocab.size, seed=seed)
                            .state_dict(), vocab=vocab, metadata={"note": "random weights"})
