"""Decoding: length penalties (pure functions of a hypothesis length)."""

from __future__ import annotations


def gnmt_length_penalty(length: int, alpha: float) -> float:
    """GNMT's lp(Y) = ((5 + |Y|) / 6) ** alpha (Wu et al., 2016); alpha = 0 gives 1.

    A hypothesis score is its summed log-probability divided by this, so alpha > 0 favours
    longer outputs. `length` counts the target tokens including the final EOS, as OpenNMT-py.
    """
    if alpha == 0.0:
        return 1.0
    return ((5.0 + length) / 6.0) ** alpha
