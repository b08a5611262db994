"""Training: turning a run's checkpoints into a bundle: the best one, or the average of the
last N."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import CheckpointError, export_bundle
from nmt.config import Config
from nmt.tokenization import Tokenizer
from nmt.training.rotation import BEST, list_step_checkpoints


def choose_checkpoints(ckpt_dir: Path, average_last: int) -> list[Path]:
    """The last `average_last` step checkpoints when averaging (> 1), else best.pt (or the
    newest)."""
    steps = [path for _, path in list_step_checkpoints(ckpt_dir)]
    if average_last > 1 and len(steps) >= 2:
        return steps[-average_last:]
    best = ckpt_dir / BEST
    if best.exists():
        return [best]
    if not steps:
        raise CheckpointError(f"{ckpt_dir}: no checkpoints to export")
    return steps[-1:]


def write_bundle(
    out_dir: Path,
    *,
    config: Config,
    weights: dict[str, torch.Tensor],
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    metadata: dict[str, Any],
    half: bool,
) -> Path:
    """Writes the bundle beside `out_dir` first and swaps it in, so a crash leaves the old one."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    export_bundle(
        tmp,
        config=config,
        state_dict=weights,
        src_tokenizer=src_tokenizer,
        tgt_tokenizer=tgt_tokenizer,
        metadata=metadata,
        half=half,
    )
    for extra in out_dir.glob("*.md") if out_dir.is_dir() else []:
        shutil.copy2(extra, tmp / extra.name)  # keep a model card written beside the weights
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir
