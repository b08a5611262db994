"""Tiny translation models, tokenizers and bundles, shared by the decoding, translator,
evaluation, CLI and reliability tests (and `tiny_bundle` in tests/conftest.py).

Random weights are enough for decoding invariants. Everything is seeded and built in well under
a second; the SentencePiece model is trained once per process.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import export_bundle
from nmt.config import Config, config_from_dict
from nmt.models.seq2seq import Seq2Seq, build_model
from nmt.tokenization import Tokenizer, train_tokenizer

WORDS = ["ein", "mann", "fährt", "fahrrad", "der", "hund", "rennt", "zwei", "frauen", "spielen",
         "im", "park", "eine", "katze", "schläft", "auf", "dem", "sofa", "kinder", "lachen"]


def synthetic_lines(n: int = 300, seed: int = 0) -> list[str]:
    """German-looking sentences (2-8 words, a final '.', '!' or '?'), some with two sentences."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
        line = sentence.capitalize() + rng.choice(".!?")
        if rng.random() < 0.2:
            line += " " + " ".join(rng.choice(WORDS) for _ in range(3)).capitalize() + "."
        lines.append(line)
    return lines


@functools.lru_cache(maxsize=1)
def tiny_tokenizer() -> Tokenizer:
    return train_tokenizer(synthetic_lines(), model_type="unigram", vocab_size=60)


def tiny_config(*, model: dict[str, Any] | None = None, decode: dict[str, Any] | None = None,
                max_len: int = 40) -> Config:
    raw = {
        "data": {"train_src": "unused.de", "train_tgt": "unused.en", "src_lang": "de",
                 "tgt_lang": "en", "max_len": max_len},
        "model": {"cell": "gru", "emb_dim": 12, "enc_hidden": 8, "dec_hidden": 16,
                  "attn_dim": 8, "attention": "bahdanau", "dropout": 0.0, "emb_dropout": 0.0,
                  **(model or {})},
        "decode": {"beam_size": 3, "length_penalty": 1.0, "max_len_a": 1.5, "max_len_b": 5,
                   **(decode or {})},
    }
    return config_from_dict(raw)


def tiny_model(config: Config, *, seed: int = 0, vocab_size: int | None = None) -> Seq2Seq:
    """A randomly initialised model in eval mode (global RNG state is left untouched)."""
    size = vocab_size or tiny_tokenizer().vocab_size
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_model(config.model, src_vocab_size=size, tgt_vocab_size=size)
        # Larger output weights than the default init give peaked, varied predictions.
        for p in model.parameters():
            p.data.mul_(3.0)
    return model.eval()


def write_tiny_bundle(out_dir: Path, *, model: dict[str, Any] | None = None,
                      decode: dict[str, Any] | None = None, max_len: int = 40, seed: int = 0
                      ) -> Path:
    config = tiny_config(model=model, decode=decode, max_len=max_len)
    tok = tiny_tokenizer()
    export_bundle(out_dir, config=config, state_dict=tiny_model(config, seed=seed).state_dict(),
                  src_tokenizer=tok, tgt_tokenizer=tok,
                  metadata={"note": "random weights, for tests"})
    return out_dir

