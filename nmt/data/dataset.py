"""Data: from a config to tokenizers and encoded, filtered training and validation sets.

SentencePiece models are trained on the training text on first use and cached next to the run;
the cache is keyed by the data fingerprint and tokenizer settings, so changing either retrains.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from nmt.config import Config, DataConfig, TokenizerConfig
from nmt.data.corpus import (
    ParallelCorpus,
    ReadStats,
    filter_pairs,
    fingerprint,
    read_parallel,
    read_tsv,
)
from nmt.tokenization import Tokenizer, train_tokenizer

log = logging.getLogger(__name__)


@dataclass
class EncodedCorpus:
    src_text: list[str]
    tgt_text: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]
    stats: ReadStats

    def __len__(self) -> int:
        return len(self.src_ids)

    def lengths(self) -> list[int]:
        """Longest side per pair, counting the EOS/BOS each side gets."""
        pairs = zip(self.src_ids, self.tgt_ids, strict=True)
        return [max(len(s), len(t)) + 1 for s, t in pairs]


@dataclass
class TrainingData:
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    train: EncodedCorpus
    valid: EncodedCorpus | None
    fingerprints: dict[str, str]


def read_split(data: DataConfig, split: str) -> ParallelCorpus | None:
    tsv = getattr(data, f"{split}_tsv")
    src, tgt = getattr(data, f"{split}_src"), getattr(data, f"{split}_tgt")
    if tsv is not None:
        return read_tsv(tsv, on_bad_line=data.on_bad_line)
    if src is None:
        return None
    return read_parallel(src, tgt, on_bad_line=data.on_bad_line)


def build_tokenizers(
    cfg: TokenizerConfig, corpus: ParallelCorpus, cache_dir: Path
) -> tuple[Tokenizer, Tokenizer]:
    """Trains (or reuses from `cache_dir`) the source and target SentencePiece models."""
    key = {
        "settings": {
            "type": cfg.type,
            "vocab_size": cfg.vocab_size,
            "joint": cfg.joint,
            "character_coverage": cfg.character_coverage,
        },
        "src": fingerprint(corpus.src),
        "tgt": fingerprint(corpus.tgt),
    }
    names = ["joint"] if cfg.joint else ["src", "tgt"]
    key_file = cache_dir / "key.json"
    if key_file.exists() and all((cache_dir / f"{n}.model").exists() for n in names):
        if json.loads(key_file.read_text()) == key:
            log.info("reusing SentencePiece models in %s", cache_dir)
            toks = [Tokenizer.from_file(cache_dir / f"{n}.model") for n in names]
            return (toks[0], toks[0]) if cfg.joint else (toks[0], toks[1])

    def train(lines: list[str]) -> Tokenizer:
        return train_tokenizer(
            lines,
            model_type=cfg.type,
            vocab_size=cfg.vocab_size,
            character_coverage=cfg.character_coverage,
        )

    log.info(
        "training %s SentencePiece model(s) (%s)", cfg.type, "joint" if cfg.joint else "separate"
    )
    if cfg.joint:
        tokenizers = [train(corpus.src + corpus.tgt)]
    else:
        tokenizers = [train(corpus.src), train(corpus.tgt)]
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, tok in zip(names, tokenizers, strict=True):
        tok.save(cache_dir / f"{name}.model")
    key_file.write_text(json.dumps(key, indent=1))
    return (tokenizers[0], tokenizers[0]) if cfg.joint else (tokenizers[0], tokenizers[1])


def encode_corpus(
    corpus: ParallelCorpus,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    *,
    max_len: int | None,
    max_ratio: float | None,
) -> EncodedCorpus:
    src_ids = src_tok.encode(corpus.src)
    tgt_ids = tgt_tok.encode(corpus.tgt)
    stats = corpus.stats
    if max_len is None:
        keep = list(range(len(src_ids)))
    else:
        keep = filter_pairs(src_ids, tgt_ids, max_len=max_len, max_ratio=max_ratio, stats=stats)
    return EncodedCorpus(
        src_text=[corpus.src[i] for i in keep],
        tgt_text=[corpus.tgt[i] for i in keep],
        src_ids=[src_ids[i] for i in keep],
        tgt_ids=[tgt_ids[i] for i in keep],
        stats=stats,
    )


def load_training_data(cfg: Config, run_dir: Path) -> TrainingData:
    train_corpus = read_split(cfg.data, "train")
    assert train_corpus is not None  # validate_semantics guarantees a training split
    cache = Path(cfg.tokenizer.model_dir)
    cache = cache if cache.is_absolute() else run_dir / cache
    src_tok, tgt_tok = build_tokenizers(cfg.tokenizer, train_corpus, cache)
    train = encode_corpus(
        train_corpus, src_tok, tgt_tok, max_len=cfg.data.max_len, max_ratio=cfg.data.max_ratio
    )
    valid_corpus = read_split(cfg.data, "valid")
    # Validation keeps every pair (no filtering): its scores must be comparable across runs.
    valid = (
        None
        if valid_corpus is None
        else encode_corpus(valid_corpus, src_tok, tgt_tok, max_len=None, max_ratio=None)
    )
    return TrainingData(
        src_tokenizer=src_tok,
        tgt_tokenizer=tgt_tok,
        train=train,
        valid=valid,
        fingerprints={
            "train_src": fingerprint(train_corpus.src),
            "train_tgt": fingerprint(train_corpus.tgt),
        },
    )
