"""Evaluation: PNG plots for reports (matplotlib, Agg backend, no display needed).

matplotlib is in the `report` extra, not in the serving install, so it is imported when a plot
is drawn (`pyplot()`), not when this module is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nmt.evaluation.metrics import BucketScore
from nmt.runtime import import_optional


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend (reports are written on servers without a display).

    Raises:
        MissingDependency: matplotlib is not installed.
    """
    matplotlib = import_optional("matplotlib", extra="report", needed_for="drawing report plots")
    matplotlib.use("Agg")  # before pyplot loads
    return import_optional("matplotlib.pyplot", extra="report", needed_for="drawing report plots")


def plot_bleu_by_length(systems: Sequence[tuple[str, Sequence[BucketScore]]], path: Path,
                        *, basis: str = "source words") -> Path:
    """Grouped bars: BLEU per length bucket, one colour per system (empty buckets left blank)."""
    labels = [b.bucket for b in systems[0][1]]
    width = 0.8 / max(1, len(systems))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(labels) + 2), 3.6))
    try:
        for k, (name, buckets) in enumerate(systems):
            xs = [i + (k - (len(systems) - 1) / 2) * width for i in range(len(labels))]
            ax.bar(xs, [b.bleu or 0.0 for b in buckets], width=width, label=name)
        counts = [b.sentences for b in systems[0][1]]
        ticks = [f"{lab}\n(n={n})" for lab, n in zip(labels, counts, strict=True)]
        ax.set_xticks(range(len(labels)), ticks)
        ax.set_xlabel(basis)
        ax.set_ylabel("BLEU")
        ax.set_title("BLEU by length")
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def plot_attention(source_tokens: Sequence[str], target_tokens: Sequence[str],
                   weights: Sequence[Sequence[float]], path: Path, *, title: str = "") -> Path:
    """Heat-map of (T, S) attention weights: target pieces down, source pieces across."""
    t, s = max(1, len(target_tokens)), max(1, len(source_tokens))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(min(16.0, 1.5 + 0.35 * s), min(16.0, 1.5 + 0.35 * t)))
    try:
        ax.imshow(weights if weights else [[0.0]], cmap="Greys", vmin=0.0, vmax=1.0,
                  aspect="auto")
        ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=90, fontsize=8)
        ax.set_yticks(range(len(target_tokens)), target_tokens, fontsize=8)
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
