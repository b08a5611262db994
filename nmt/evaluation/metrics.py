"""Evaluation: corpus metrics (BLEU, chrF, TER), all computed by sacrebleu, and nothing else.

`corpus_scores` is what training's validation calls; `score_system` adds signatures and 95%
bootstrap confidence intervals; `paired_significance` compares systems with sacrebleu's paired
bootstrap test. Every number in a report comes from here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.metrics.base import Metric
from sacrebleu.significance import PairedTest, Result

METRICS = ("bleu", "chrf", "ter")
_CLASSES: dict[str, type[Metric]] = {"bleu": BLEU, "chrf": CHRF, "ter": TER}
# Lower is better for TER; reports and plots need to know.
LOWER_IS_BETTER = {"ter"}
# Source-length buckets (in whitespace-separated words) for BLEU by length: (label, max words).
LENGTH_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("1-10", 10), ("11-20", 20), ("21-30", 30), ("31+", None),
)


class EvaluationError(ValueError):
    """Hypotheses and references that cannot be scored together."""


@dataclass(frozen=True)
class MetricScore:
    name: str  # sacrebleu's name: "BLEU", "chrF2", "TER"
    score: float
    signature: str  # sacrebleu's signature string, with bootstrap settings when used
    ci_mean: float | None = None  # bootstrap mean
    ci_radius: float | None = None  # half-width of the 95% confidence interval

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BucketScore:
    bucket: str  # "1-10", ...
    sentences: int
    bleu: float | None  # None for an empty bucket


References = Sequence[str] | Sequence[Sequence[str]]


def ref_streams(hyps: Sequence[str], refs: References) -> list[list[str]]:
    """One reference per hypothesis (list[str]) or several streams (list of lists), as sacrebleu
    takes them -> a list of streams, each checked to align with `hyps`."""
    if not refs:
        raise EvaluationError("nothing to score: no references")
    streams: list[list[str]] = ([[str(r) for r in refs]] if isinstance(refs[0], str)
                                else [list(r) for r in refs])
    for stream in streams:
        if len(stream) != len(hyps):
            raise EvaluationError(f"{len(hyps)} hypotheses but {len(stream)} references")
    if not hyps:
        raise EvaluationError("nothing to score: no hypotheses")
    return streams


def _metric(name: str) -> Metric:
    if name not in _CLASSES:
        raise EvaluationError(f"unknown metric {name!r}; choose from {list(METRICS)}")
    return _CLASSES[name]()


def score_metric(name: str, hyps: Sequence[str], refs: References, *, n_bootstrap: int = 1
                 ) -> MetricScore:
    """One sacrebleu metric with its default settings, as `sacrebleu -m NAME` computes it.

    Args:
        refs: one reference per hypothesis, or a list of reference streams.
        n_bootstrap: > 1 adds sacrebleu's 95% bootstrap interval from that many resamples.
    """
    streams = ref_streams(hyps, refs)
    metric = _metric(name)
    result = metric.corpus_score(list(hyps), streams, n_bootstrap=n_bootstrap)
    with_ci = n_bootstrap > 1
    return MetricScore(
        name=result.name,
        score=float(result.score),
        signature=metric.get_signature().format(),
        ci_mean=float(result._mean) if with_ci else None,  # sacrebleu keeps these private
        ci_radius=float(result._ci) if with_ci else None,
    )


def corpus_scores(hyps: Sequence[str], refs: References, *,
                  metrics: Sequence[str] = METRICS) -> dict[str, dict[str, Any]]:
    """Scores detokenised hypotheses; what training's validation calls.

    Args:
        refs: one reference per hypothesis, or a list of reference streams (sacrebleu's form).
        metrics: a subset of ("bleu", "chrf", "ter"); TER is the slowest.

    Returns:
        {"bleu": {"name": "BLEU", "score": 34.1, "signature": "nrefs:1|...", ...}, ...}
    """
    return {name: score_metric(name, hyps, refs).to_dict() for name in metrics}


def score_system(hyps: Sequence[str], refs: References, *, n_bootstrap: int = 1000,
                 metrics: Sequence[str] = METRICS) -> dict[str, MetricScore]:
    """Every metric with its signature and (for n_bootstrap > 1) a 95% confidence interval."""
    return {name: score_metric(name, hyps, refs, n_bootstrap=n_bootstrap) for name in metrics}


def bleu_by_length(hyps: Sequence[str], refs: References, lengths: Sequence[int],
                   buckets: tuple[tuple[str, int | None], ...] = LENGTH_BUCKETS
                   ) -> list[BucketScore]:
    """Corpus BLEU of the sentences in each length bucket.

    Args:
        lengths: per sentence, its length in words (empty sentences go to the first bucket).
    """
    streams = ref_streams(hyps, refs)
    if len(lengths) != len(hyps):
        raise EvaluationError(f"{len(lengths)} lengths but {len(hyps)} hypotheses")
    members: list[list[int]] = [[] for _ in buckets]
    for i, n in enumerate(lengths):
        b = next(j for j, (_, top) in enumerate(buckets) if top is None or n <= top)
        members[b].append(i)
    out = []
    for (label, _), idx in zip(buckets, members, strict=True):
        bleu = (score_metric("bleu", [hyps[i] for i in idx],
                             [[stream[i] for i in idx] for stream in streams]).score
                if idx else None)
        out.append(BucketScore(label, len(idx), bleu))
    return out


def paired_significance(systems: Sequence[tuple[str, Sequence[str]]], refs: References, *,
                        n_samples: int = 1000, metrics: Sequence[str] = METRICS
                        ) -> list[dict[str, Any]]:
    """Paired bootstrap resampling (sacrebleu's `--paired-bs`) of each system against the first.

    Returns:
        Per system after the baseline: {"system", "baseline", and per metric name a dict with
        "score", "p_value", "mean", "ci"}.
    """
    if len(systems) < 2:
        return []
    streams = [ref_streams(hyps, refs) for _, hyps in systems][0]  # checks every system
    test = PairedTest([(name, list(h)) for name, h in systems],
                      {name.upper(): _metric(name) for name in metrics}, streams,
                      test_type="bs", n_samples=n_samples)
    signatures, table = test()
    keys = [k for k in table if k != "System"]
    out = []
    for i, (name, _) in enumerate(systems[1:], start=1):
        entry: dict[str, Any] = {"system": name, "baseline": systems[0][0]}
        for key, metric in zip(keys, metrics, strict=True):
            result, baseline = table[key][i], table[key][0]
            assert isinstance(result, Result) and isinstance(baseline, Result)
            # sacrebleu counts resampled differences strictly above the observed one, so a
            # system scoring exactly like the baseline gets the smallest p-value; equal scores
            # are no evidence of a difference, so report p = 1 for them.
            same = result.score == baseline.score
            entry[metric] = {"name": key, "score": float(result.score),
                             "p_value": 1.0 if same else float(result.p_value or 0.0),
                             "mean": float(result.mean or 0.0), "ci": float(result.ci or 0.0),
                             "signature": signatures[key].format()}
        out.append(entry)
    return out


def bootstrap_seed() -> str:
    """The seed sacrebleu's resampling uses (SACREBLEU_SEED, default 12345)."""
    return os.environ.get("SACREBLEU_SEED", "12345")
