"""Diagnostics: the gradient-flow report: per cell, dL/dh_t over time, gradient norms in training.

For each cell the same model config is built (cell swapped), from the same seed:
1. ||dL/dh_t|| per encoder step on a fixed batch of long real inputs, untrained;
2. N Adam steps on other long batches, once with gradient-norm clipping and once without,
   recording the global gradient norm (before clipping) at every step;
3. ||dL/dh_t|| again on the fixed batch, after the N clipped steps.
The encoder is unidirectional and the decoder has no attention (unless asked to keep it), so
the loss reaches an early encoder state only through the recurrence: what vanishes is visible.
Measurements run in float64 so tiny gradients do not underflow to zero.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nmt.config import Config
from nmt.diagnostics.gradients import early_late_ratio, step_gradient_norms, train_trace
from nmt.diagnostics.long_batches import GradientData
from nmt.evaluation.plots import pyplot
from nmt.models.seq2seq import build_model

log = logging.getLogger(__name__)
CELLS = ("rnn", "gru", "lstm")


def diagnosis_model_config(cfg: Config, cell: str, *, keep_attention: bool):
    """The config's model section with `cell`, a unidirectional encoder and (default) no attention.
    """
    changes: dict[str, Any] = {"cell": cell, "bidirectional": False}
    if not keep_attention:
        changes["attention"] = "none"
    return dataclasses.replace(cfg.model, **changes)


def analyse_cell(cfg: Config, data: GradientData, cell: str, *, keep_attention: bool,
                 lr: float, clip_norm: float, seed: int) -> dict[str, Any]:
    model_cfg = diagnosis_model_config(cfg, cell, keep_attention=keep_attention)
    torch.manual_seed(seed)
    model = build_model(model_cfg, src_vocab_size=data.src_vocab_size,
                        tgt_vocab_size=data.tgt_vocab_size)
    start = time.perf_counter()
    init = step_gradient_norms(copy.deepcopy(model).double().eval(), data.probe)
    torch.manual_seed(seed + 1)
    clipped = train_trace(model, data.train, lr=lr, clip_norm=clip_norm)
    torch.manual_seed(seed + 1)
    unclipped = train_trace(model, data.train, lr=lr, clip_norm=0.0)
    trained = step_gradient_norms(clipped.model.double(), data.probe)
    log.info("%s: %.1f s", cell, time.perf_counter() - start)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_grad_norms": {"untrained": init.tolist(), "trained": trained.tolist()},
        "early_late_ratio": {"untrained": early_late_ratio(init),
                             "trained": early_late_ratio(trained)},
        "first_last_ratio": {"untrained": float(init[0] / init[-1]),
                             "trained": float(trained[0] / trained[-1])},
        "train_grad_norms": {"clipped": clipped.grad_norms, "unclipped": unclipped.grad_norms},
        "train_losses": {"clipped": clipped.losses, "unclipped": unclipped.losses},
    }


def run_report(cfg: Config, data: GradientData, cells: Sequence[str], out_dir: Path, *,
               keep_attention: bool = False, lr: float | None = None,
               clip_norm: float | None = None, seed: int = 1234,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Analyses every cell and writes report.json, gradient_per_step.png, grad_norm_training.png."""
    lr = cfg.train.lr if lr is None else lr
    clip_norm = (cfg.train.clip_norm or 1.0) if clip_norm is None else clip_norm
    start = time.perf_counter()
    results = {cell: analyse_cell(cfg, data, cell, keep_attention=keep_attention, lr=lr,
                                  clip_norm=clip_norm, seed=seed) for cell in cells}
    model_cfg = diagnosis_model_config(cfg, cells[0], keep_attention=keep_attention)
    report = {
        "what": "||dL/dh_t|| per encoder step (mean over the probe batch), and global gradient "
                "norms (before clipping) over training steps with and without clipping",
        "data": data.description,
        "src_len": int(data.probe.src.size(1)),
        "tgt_len_max": int(data.probe.tgt_out.size(1)) if data.probe.tgt_out is not None else 0,
        "batch_size": len(data.probe),
        "train_steps": len(data.train),
        "lr": lr,
        "clip_norm": clip_norm,
        "seed": seed,
        "model": {k: v for k, v in dataclasses.asdict(model_cfg).items() if k != "cell"},
        **(extra or {}),
        "headline": {cell: headline(r) for cell, r in results.items()},
        "cells": results,
        "seconds": round(time.perf_counter() - start, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    plot_step_norms(results, out_dir / "gradient_per_step.png", src_len=report["src_len"])
    plot_training_norms(results, out_dir / "grad_norm_training.png", clip_norm=clip_norm)
    return report


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers worth quoting: first/last-step ratios (log10) and gradient-norm extremes."""
    def log10(x: float) -> float:
        return round(math.log10(x), 2) if x > 0 else float("-inf")

    norms = result["train_grad_norms"]
    steps = len(result["step_grad_norms"]["untrained"]) - 1
    ratios = result["first_last_ratio"]
    return {
        # Geometric mean of ||dL/dh_(t-1)|| / ||dL/dh_t||: the gradient kept per step back.
        "per_step_factor_untrained": round(ratios["untrained"] ** (1 / steps), 4),
        "per_step_factor_trained": round(ratios["trained"] ** (1 / steps), 4),
        "log10_first_over_last_untrained": log10(result["first_last_ratio"]["untrained"]),
        "log10_first_over_last_trained": log10(result["first_last_ratio"]["trained"]),
        "max_grad_norm_unclipped": round(max(norms["unclipped"]), 3),
        "max_grad_norm_clipped_run": round(max(norms["clipped"]), 3),
        "final_loss_clipped": round(result["train_losses"]["clipped"][-1], 3),
        "final_loss_unclipped": round(result["train_losses"]["unclipped"][-1], 3),
    }


def plot_step_norms(results: dict[str, Any], path: Path, *, src_len: int) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    try:
        for ax, stage in zip(axes, ("untrained", "trained"), strict=True):
            for cell, r in results.items():
                values = [max(v, 1e-300) for v in r["step_grad_norms"][stage]]
                ax.plot(range(1, len(values) + 1), values, label=cell)
            ax.set_yscale("log")
            ax.set_xlabel(f"encoder time step t (of {src_len})")
            ax.set_title(f"{stage}")
            ax.grid(True, which="major", alpha=0.3)
        axes[0].set_ylabel("||dL/dh_t||")
        axes[0].legend()
        fig.suptitle("Gradient of the loss w.r.t. each encoder state")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def plot_training_norms(results: dict[str, Any], path: Path, *, clip_norm: float) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    try:
        for k, (cell, r) in enumerate(results.items()):
            colour = f"C{k}"
            norms = r["train_grad_norms"]
            steps = range(1, len(norms["unclipped"]) + 1)
            ax.plot(steps, norms["unclipped"], color=colour, label=f"{cell}, no clipping")
            ax.plot(steps, norms["clipped"], color=colour, linestyle="--",
                    label=f"{cell}, clipped at {clip_norm:g}")
        ax.axhline(clip_norm, color="grey", linewidth=0.8, linestyle=":")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_xlabel("training step")
        ax.set_ylabel("global gradient norm (before clipping)")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
