"""Language models: LM bundles: a directory whose model.pt holds config, weights, vocabulary.

model.pt = {format_version, kind: "lm", config (dict), model (weights), vocab (dict of strings or
SentencePiece bytes), metadata}; loaded with torch.load(weights_only=True) via nmt.checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import (
    BUNDLE_WEIGHTS,
    FORMAT_VERSION,
    LM_KINDS,
    CheckpointError,
    atomic_save,
    atomic_write_text,
    check_kind,
    resolve_weights_path,
    safe_load,
)
from nmt.config import ConfigError
from nmt.lm.config import LMConfig, lm_config_from_dict
from nmt.lm.model import RecurrentLM, build_lm
from nmt.lm.vocab import Vocab, VocabError, vocab_from_data
from nmt.tokenization import TokenizerError

LM_KIND = LM_KINDS[0]


@dataclass
class LoadedLM:
    model: RecurrentLM
    vocab: Vocab
    config: LMConfig
    metadata: dict[str, Any]
    path: Path


def export_lm_bundle(out_dir: str | Path, *, config: LMConfig, state_dict: dict[str, torch.Tensor],
                     vocab: Vocab, metadata: dict[str, Any]) -> Path:
    """Writes model.pt (all that loading needs) plus readable config.json and metadata.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_save(
        {
            "format_version": FORMAT_VERSION,
            "kind": LM_KIND,
            "config": config.to_dict(),
            "model": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
            "vocab": vocab.to_data(),
            "metadata": metadata,
        },
        out_dir / BUNDLE_WEIGHTS,
    )
    atomic_write_text(out_dir / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
    atomic_write_text(out_dir / "metadata.json", json.dumps(metadata, indent=2) + "\n")
    return out_dir


def load_lm(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedLM:
    """An LM bundle directory or LM checkpoint `.pt`, in eval mode.

    Raises:
        CheckpointError: naming the file, for anything missing, unsafe or inconsistent.
    """
    weights_path = resolve_weights_path(path)
    obj = safe_load(weights_path)
    check_kind(
        obj,
        weights_path,
        expected=LM_KINDS,
        needed_by="a language model (nmt lm sample, nmt lm evaluate, nmt translate --lm)",
        hint="LM bundles are written by `nmt lm train`; nmt translate, evaluate and serve "
        "read translation bundles",
    )
    try:
        config = lm_config_from_dict(obj["config"])
        vocab = vocab_from_data(obj["vocab"])
    except (ConfigError, VocabError, TokenizerError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{weights_path}: stored config or vocabulary is invalid: {err}") from err
    model = build_lm(config.model, vocab_size=vocab.size)
    try:
        model.load_state_dict(obj["model"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{weights_path}: weights do not match the stored config (vocab {vocab.size}): "
            + " ".join(str(err).splitlines()[1:3])[:300]
        ) from err
    model.to(device).eval()
    return LoadedLM(model=model, vocab=vocab, config=config,
                    metadata=dict(obj.get("metadata", {})), path=Path(path))
