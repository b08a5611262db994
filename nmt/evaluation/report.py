"""Evaluation: scoring several systems against one reference, and writing the report directory.

A report directory holds report.json (every number), report.md (the same as tables) and PNG
plots: BLEU by length, and attention heat-maps when examples are given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sacrebleu

from nmt.evaluation.metrics import (
    METRICS,
    BucketScore,
    EvaluationError,
    MetricScore,
    bleu_by_length,
    bootstrap_seed,
    paired_significance,
    score_system,
)
from nmt.evaluation.plots import plot_attention, plot_bleu_by_length

SIGNIFICANCE_LEVEL = 0.05


@dataclass(frozen=True)
class SystemOutput:
    """What to score: one system's detokenised hypotheses and how they were made."""

    name: str
    hyps: list[str]
    settings: dict[str, Any] = field(default_factory=dict)  # e.g. {"beam_size": 5}
    hyp_file: str | None = None
    seconds: float | None = None  # decoding wall time, when this run decoded


@dataclass(frozen=True)
class SystemReport:
    name: str
    settings: dict[str, Any]
    hyp_file: str | None
    seconds: float | None
    scores: dict[str, MetricScore]
    by_length: list[BucketScore]


@dataclass(frozen=True)
class AttentionExample:
    source_tokens: list[str]
    target_tokens: list[str]
    weights: list[list[float]]  # (T, S)


@dataclass(frozen=True)
class EvalReport:
    ref_file: str | None
    src_file: str | None
    sentences: int
    length_basis: str  # "source words" or "reference words" (no source given)
    systems: list[SystemReport]
    significance: list[dict[str, Any]]  # paired bootstrap, each system against the first
    bootstrap_samples: int
    bootstrap_seed: str
    sacrebleu_version: str
    model: dict[str, Any] | None = None
    attention: list[AttentionExample] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _word_counts(texts: Sequence[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def evaluate_systems(systems: Sequence[SystemOutput], refs: Sequence[str], *,
                     sources: Sequence[str] | None = None, n_bootstrap: int = 1000,
                     ref_file: str | None = None, src_file: str | None = None,
                     model: dict[str, Any] | None = None,
                     attention: Sequence[AttentionExample] = ()) -> EvalReport:
    """Scores every system (with 95% CIs), compares each with the first, buckets by length.

    Args:
        sources: source sentences for length buckets; without them, reference lengths are used.
        n_bootstrap: resamples for confidence intervals and the paired test (0 or 1: none).
    """
    if not systems:
        raise EvaluationError("no systems to evaluate")
    if sources is not None and len(sources) != len(refs):
        raise EvaluationError(f"{len(sources)} source sentences but {len(refs)} references")
    lengths = _word_counts(sources if sources is not None else refs)
    reports = []
    for system in systems:
        if len(system.hyps) != len(refs):
            where = system.hyp_file or system.name
            raise EvaluationError(f"{where}: {len(system.hyps)} hypotheses but {len(refs)} "
                                  f"references{f' in {ref_file}' if ref_file else ''}")
        reports.append(SystemReport(
            name=system.name, settings=dict(system.settings), hyp_file=system.hyp_file,
            seconds=system.seconds,
            scores=score_system(system.hyps, refs, n_bootstrap=n_bootstrap),
            by_length=bleu_by_length(system.hyps, refs, lengths),
        ))
    significance = []
    if len(systems) > 1 and n_bootstrap > 1:
        significance = paired_significance([(s.name, s.hyps) for s in systems], refs,
                                           n_samples=n_bootstrap)
    return EvalReport(
        ref_file=ref_file, src_file=src_file, sentences=len(refs),
        length_basis="source words" if sources is not None else "reference words",
        systems=reports, significance=significance, bootstrap_samples=n_bootstrap,
        bootstrap_seed=bootstrap_seed(), sacrebleu_version=sacrebleu.__version__, model=model,
        attention=list(attention),
    )


def write_report(report: EvalReport, out_dir: str | Path) -> list[Path]:
    """Writes report.json, report.md and the plots; returns the paths written."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EvaluationError(f"cannot create report directory {out_dir}: {err.strerror}") from err
    written = [plot_bleu_by_length([(s.name, s.by_length) for s in report.systems],
                                   out_dir / "bleu_by_length.png", basis=report.length_basis)]
    for i, ex in enumerate(report.attention, start=1):
        written.append(plot_attention(ex.source_tokens, ex.target_tokens, ex.weights,
                                      out_dir / f"attention_{i}.png",
                                      title=f"{report.systems[0].name}, example {i}"))
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str,
                                                    ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(render_markdown(report, [p.name for p in written]),
                                       encoding="utf-8")
    return [out_dir / "report.json", out_dir / "report.md", *written]


def _fmt(score: MetricScore) -> str:
    if score.ci_radius is None:
        return f"{score.score:.1f}"
    return f"{score.score:.1f} ± {score.ci_radius:.1f}"


def render_markdown(report: EvalReport, plots: Sequence[str] = ()) -> str:
    """The report as Markdown tables (scores to one decimal, as sacrebleu prints them)."""
    first = report.systems[0].scores
    lines = ["# Evaluation report", ""]
    if report.model:
        lines.append(f"- model: `{report.model.get('path')}`")
    if report.src_file:
        lines.append(f"- source: `{report.src_file}`")
    lines += [f"- references: `{report.ref_file}` ({report.sentences} sentences)",
              f"- sacrebleu {report.sacrebleu_version}; ± is the 95% bootstrap confidence "
              f"interval ({report.bootstrap_samples} resamples, seed {report.bootstrap_seed})",
              "", "## Scores", "",
              "| system | " + " | ".join(first[m].name for m in METRICS) + " | seconds |",
              "|---|" + "---:|" * (len(METRICS) + 1)]
    for s in report.systems:
        secs = "" if s.seconds is None else f"{s.seconds:.1f}"
        lines.append(f"| {s.name} | " + " | ".join(_fmt(s.scores[m]) for m in METRICS)
                     + f" | {secs} |")
    lines += ["", "Signatures:", ""]
    lines += [f"- {first[m].name}: `{first[m].signature}`" for m in METRICS]
    if report.significance:
        lines += ["", f"## Paired bootstrap against {report.systems[0].name}", "",
                  "| system | metric | score | baseline | p-value | significant |",
                  "|---|---|---:|---:|---:|---|"]
        base = {m: first[m].score for m in METRICS}
        for entry in report.significance:
            for m in METRICS:
                r = entry[m]
                mark = "yes" if r["p_value"] < SIGNIFICANCE_LEVEL else "no"
                lines.append(f"| {entry['system']} | {r['name']} | {r['score']:.1f} | "
                             f"{base[m]:.1f} | {r['p_value']:.4f} | {mark} |")
    lines += ["", f"## BLEU by length ({report.length_basis})", "",
              "| bucket | sentences | " + " | ".join(s.name for s in report.systems) + " |",
              "|---|---:|" + "---:|" * len(report.systems)]
    for i, bucket in enumerate(report.systems[0].by_length):
        cells = [("" if s.by_length[i].bleu is None else f"{s.by_length[i].bleu:.1f}")
                 for s in report.systems]
        lines.append(f"| {bucket.bucket} | {bucket.sentences} | " + " | ".join(cells) + " |")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
