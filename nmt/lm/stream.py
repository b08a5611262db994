"""Language models: the truncated-BPTT stream batcher.

The corpus is one long id stream (lines joined by the separator). It is cut into B contiguous
parts laid side by side as a (B, N) tensor, so row i continues, window after window, exactly
where it left off. Each window takes the next `bptt` tokens of every row; the trainer carries
the hidden state from one window into the next and detaches it, so gradients flow back at most
one window while the state flows forward through the whole text.

    stream  a b c d e f g h i j k      B = 2  ->  row 0: a b c d e f
                                                   row 1: f g h i j k
    windows of 2: inputs [a b | f g], targets [b c | g h]; then [c d | h i] -> [d e | i j] ...
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

IGNORE = -100  # cross_entropy's ignore_index: padded targets in evaluation layouts


@dataclass(frozen=True)
class Window:
    start: int  # column of the first input token
    inputs: Tensor  # (B, T)
    targets: Tensor  # (B, T) the next token of every input; IGNORE where padded


def layout(ids: Sequence[int], batch_size: int, *, separator: int, pad: bool = False) -> Tensor:
    """Lays the stream `[separator] + ids` out as B rows of K + 1 tokens, K predictions each.

    Row i holds stream positions i*K .. i*K + K: consecutive rows share one token (the last
    input context of row i is the first token of row i + 1), so every token of the stream is a
    target exactly once. The leading separator gives the first token a context (it begins a
    line). Without `pad` the tail that does not fill all rows is dropped (training); with `pad`
    every token is kept and the end of the last row is filled with IGNORE (evaluation).

    Returns:
        (B, K + 1) long tensor.
    """
    data = [separator, *ids]
    predictions = len(data) - 1
    per_row = math.ceil(predictions / batch_size) if pad else predictions // batch_size
    if per_row < 1:
        raise ValueError(
            f"a stream of {len(ids)} tokens is too short for {batch_size} parallel streams"
        )
    data = data + [IGNORE] * max(0, batch_size * per_row + 1 - len(data))
    rows = [data[i * per_row : i * per_row + per_row + 1] for i in range(batch_size)]
    return torch.tensor(rows, dtype=torch.long)


def window_lengths(width: int, bptt: int, *, random_bptt: bool = False, seed: int = 0
                   ) -> list[int]:
    """Lengths of the consecutive windows covering N - 1 predictions per row.

    With `random_bptt` (AWD-LSTM): `bptt`, or `bptt / 2` with probability 0.05, then jittered
    by a normal of std 5, at least 5 tokens, so window boundaries move from epoch to epoch.
    A pure function of its arguments, so a resumed run sees the same windows.
    """
    rng = random.Random(seed)
    lengths, pos = [], 0
    while pos < width - 1:
        length = bptt
        if random_bptt:
            base = bptt if rng.random() < 0.95 else bptt / 2
            length = max(5, int(rng.gauss(base, 5)))
        length = min(length, width - 1 - pos)
        lengths.append(length)
        pos += length
    return lengths


def windows(data: Tensor, lengths: Sequence[int], *, start_window: int = 0) -> Iterator[Window]:
    """Consecutive windows over a (B, N) layout; inputs never include the IGNORE padding."""
    pos = sum(lengths[:start_window])
    for length in lengths[start_window:]:
        inputs = data[:, pos : pos + length]
        targets = data[:, pos + 1 : pos + 1 + length]
        yield Window(start=pos, inputs=inputs.clamp(min=0), targets=targets)
        pos += length
