"""Language models: typed, frozen LM settings loaded from one YAML file and validated once.

The machinery (unknown keys, types, choices and ranges named by key) is nmt.config's; only the
dataclasses differ. An LM config says `kind: lm` at the top, so a tool that finds a YAML file can
tell it from a translation experiment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from nmt.config import ConfigError, LoopConfig, _range, build_config, read_yaml


@dataclass(frozen=True)
class LMDataConfig:
    train: str | None = None  # one sentence (or paragraph) per line, plain or .gz
    valid: str | None = None  # for validation perplexity and early stopping
    on_bad_line: Literal["error", "skip"] = "error"  # a line that is not valid UTF-8


@dataclass(frozen=True)
class LMTokenizerConfig:
    # char: every character of the training text (plus an unknown symbol), saved in the bundle.
    # spm: SentencePiece subwords (nmt.tokenization), needed for fusion with a translation model.
    type: Literal["char", "spm"] = "char"
    # spm only: a SentencePiece .model file, or a translation bundle/checkpoint whose *target*
    # SentencePiece model is taken (what fusion needs). None: train a unigram model on `train`.
    spm_model: str | None = None
    vocab_size: int = field(default=8000, metadata=_range(8, None))  # spm training only


@dataclass(frozen=True)
class LMModelConfig:
    cell: Literal["rnn", "gru", "lstm"] = "lstm"
    emb_dim: int = field(default=128, metadata=_range(1, None))
    hidden: int = field(default=512, metadata=_range(1, None))
    layers: int = field(default=1, metadata=_range(1, 16))
    # On the embeddings, between layers and before the output layer.
    dropout: float = field(default=0.2, metadata=_range(0.0, 0.95))
    tie_output: bool = True  # output projection shares the embedding matrix


@dataclass(frozen=True)
class LMTrainConfig(LoopConfig):
    # The loop's settings (nmt.config.LoopConfig) with the defaults an LM wants.
    epochs: int = field(default=10, metadata=_range(1, None))
    lr: float = field(default=2e-3, metadata=_range(0.0, 10.0))
    scheduler: Literal["plateau", "constant"] = "plateau"
    plateau_patience: int = field(default=0, metadata=_range(0, None))
    clip_norm: float = field(default=0.25, metadata=_range(0.0, None))  # 0: no clipping
    patience: int = field(default=3, metadata=_range(0, None))  # validations; 0: never stop early
    keep_last: int = field(default=2, metadata=_range(1, None))
    log_every: int = field(default=50, metadata=_range(1, None))
    # The LM's own.
    batch_size: int = field(default=32, metadata=_range(1, None))  # parallel streams B
    bptt: int = field(default=100, metadata=_range(1, None))  # tokens per window (backprop depth)
    random_bptt: bool = False  # AWD-LSTM style: vary window lengths around `bptt`
    valid_batch_size: int = field(default=16, metadata=_range(1, None))


@dataclass(frozen=True)
class LMConfig:
    kind: Literal["lm"] = "lm"
    name: str = "lm"
    data: LMDataConfig = LMDataConfig()
    tokenizer: LMTokenizerConfig = LMTokenizerConfig()
    model: LMModelConfig = LMModelConfig()
    train: LMTrainConfig = LMTrainConfig()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate_semantics(self) -> None:
        if self.data.train is None:
            raise ConfigError("data.train: set the training text file")
        if self.tokenizer.type == "char" and self.tokenizer.spm_model is not None:
            raise ConfigError("tokenizer.spm_model is only used with tokenizer.type: spm")


def lm_config_from_dict(raw: dict[str, Any], overrides: Sequence[str] = ()) -> LMConfig:
    """Builds and validates an LMConfig from a plain dict plus `a.b=value` overrides."""
    return build_config(LMConfig, raw, overrides)


def load_lm_config(path: str | Path, overrides: Sequence[str] = ()) -> LMConfig:
    raw = read_yaml(path)
    if isinstance(raw, dict) and raw.get("kind", "lm") != "lm":
        raise ConfigError(f"{path}: not a language-model config (kind: {raw['kind']!r})")
    if isinstance(raw, dict) and "kind" not in raw and "data" in raw and "train_src" in (
            raw["data"] or {}):
        raise ConfigError(f"{path}: this is a translation config; use `nmt train` for it")
    try:
        return lm_config_from_dict(raw, overrides)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


def save_lm_config(cfg: LMConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
