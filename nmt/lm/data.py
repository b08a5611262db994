"""Language models: from an LM config to its vocabulary and encoded training stream."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nmt.checkpoint import CheckpointError, safe_load
from nmt.data.corpus import DataError, fingerprint, read_lines
from nmt.lm.config import LMConfig, LMTokenizerConfig
from nmt.lm.vocab import CharVocab, SubwordVocab, Vocab, count_chars, encode_stream
from nmt.tokenization import Tokenizer, TokenizerError, train_tokenizer

log = logging.getLogger(__name__)


@dataclass
class LMData:
    vocab: Vocab
    train_ids: list[int]
    train_chars: int
    valid_lines: list[str] | None
    fingerprint: str


def read_text(path: str | Path, *, on_bad_line: str = "error") -> list[str]:
    """Normalised non-empty lines of a UTF-8 text file (plain or gzip)."""
    return [line for line in read_lines(path, on_bad_line=on_bad_line) if line]


def spm_from_path(path: str | Path) -> Tokenizer:
    """A SentencePiece .model file, or the target-side model of a translation bundle/checkpoint."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".pt":
        weights = path / "model.pt" if path.is_dir() else path
        obj = safe_load(weights)
        if "tgt_spm" not in obj:
            raise CheckpointError(f"{weights}: holds no target SentencePiece model (tgt_spm)")
        return Tokenizer(obj["tgt_spm"], origin=f"{weights}[tgt_spm]")
    if not path.exists():
        raise TokenizerError(
            f"tokenizer.spm_model: {path} not found (give a SentencePiece .model file or a "
            "translation model bundle; set it to null to train a new SentencePiece model)"
        )
    return Tokenizer.from_file(path)


def build_vocab(cfg: LMTokenizerConfig, train_lines: list[str], cache_dir: Path) -> Vocab:
    if cfg.type == "char":
        return CharVocab.from_text(train_lines)
    if cfg.spm_model is not None:
        return SubwordVocab(spm_from_path(cfg.spm_model))
    cached = cache_dir / "lm.model"
    key = f"{fingerprint(train_lines)}:{cfg.vocab_size}"
    key_file = cache_dir / "lm.key"
    if cached.exists() and key_file.exists() and key_file.read_text() == key:
        return SubwordVocab(Tokenizer.from_file(cached))
    log.info("training a unigram SentencePiece model (vocab_size %d)", cfg.vocab_size)
    tok = train_tokenizer(train_lines, model_type="unigram", vocab_size=cfg.vocab_size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tok.save(cached)
    key_file.write_text(key)
    return SubwordVocab(tok)


def load_lm_data(cfg: LMConfig, run_dir: Path) -> LMData:
    assert cfg.data.train is not None  # validate_semantics guarantees it
    train_lines = read_text(cfg.data.train, on_bad_line=cfg.data.on_bad_line)
    if not train_lines:
        raise DataError(f"{cfg.data.train}: no text")
    vocab = build_vocab(cfg.tokenizer, train_lines, run_dir / "spm")
    valid = None
    if cfg.data.valid is not None:
        valid = read_text(cfg.data.valid, on_bad_line=cfg.data.on_bad_line)
        if not valid:
            raise DataError(f"{cfg.data.valid}: no text")
    return LMData(vocab=vocab, train_ids=encode_stream(vocab, train_lines),
                  train_chars=count_chars(train_lines), valid_lines=valid,
                  fingerprint=fingerprint(train_lines))
