"""Decoding: the `Hypothesis` both searches return, and n-best ordering."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Hypothesis:
    """One finished translation of one source sentence.

    Attributes:
        tokens: target ids, without BOS and EOS.
        score: summed log-probability (EOS included) divided by the GNMT length penalty.
        attention: (T, S) weights, T = len(tokens), S = the source length including its EOS;
            None when the model has no attention or attention was not requested.
    """

    tokens: list[int]
    score: float
    attention: Tensor | None = None


def best_first(hyps: list[Hypothesis], nbest: int) -> list[Hypothesis]:
    """The `nbest` highest-scoring hypotheses, best first (stable for equal scores)."""
    return sorted(hyps, key=lambda h: -h.score)[:nbest]
