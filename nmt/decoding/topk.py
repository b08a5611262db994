"""Decoding: the best (beam, token) extensions of each sentence, and greedy's best token, found
in two stages.

torch's CPU `topk` visits a row one element at a time (about 3 ns each here): ranking the 8,000
tokens of every beam cost a beam-5 step more than its log-softmax (torch.profiler, 320 rows: 4 ms
against 3 ms a step).
So the vocabulary is cut into blocks of C consecutive tokens: one vectorised `amax` gives each
block's best log-prob, the W best blocks of a sentence (over all its beams, beam score added) are
ranked, and then only their W * C tokens. That is exact: fewer than W blocks can hold an extension
better than the W-th best, so the blocks kept hold every extension up to it (with ties, some of
those equal to it; the values returned are those of a full ranking either way). Greedy search's
argmax is found the same way, because torch's CPU `max(dim=1)` is slow over 8,000 columns too.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def block_size(vocab: int) -> int:
    """C: a power of two near sqrt(V / 2), which balances ranking K * V / C block maxima against
    ranking W * C tokens (W = 2K); 64 for V = 8,000."""
    return max(1, min(vocab, 2 ** round(math.log2(max(1.0, math.sqrt(vocab / 2))))))


def top_extensions(scores: Tensor, log_probs: Tensor, width: int, *, block: int | None = None
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """The `width` best extensions (beam score + token log-prob) of each sentence.

    Args:
        scores: (N, K) summed log-probs of each sentence's beams (-inf for an empty beam).
        log_probs: (N * K, V) next-token log-probs, the K beams of a sentence consecutive.
        width: W, at most K * V.
        block: C, tokens per block (default `block_size(V)`; at most V).

    Returns:
        values (N, W) best first; rows (N, W), the flat row (sentence * K + beam) each extends;
        tokens (N, W), the token each appends.
    """
    n, k = scores.shape
    vocab = log_probs.size(1)
    block = min(block or block_size(vocab), vocab)
    n_blocks = vocab // block
    body = n_blocks * block  # tokens past it (V % C of them) are all candidates
    blocks = log_probs[:, :body].unflatten(1, (n_blocks, block))  # (N * K, nb, C), a view
    block_best = (scores.view(-1, 1) + blocks.amax(dim=2)).view(n, k * n_blocks)
    picked = block_best.topk(min(width, k * n_blocks), dim=1).indices  # (N, P)
    first_row = torch.arange(n, device=scores.device)[:, None] * k  # (N, 1)
    rows = first_row + torch.div(picked, n_blocks, rounding_mode="floor")  # (N, P)
    which = picked % n_blocks
    values = scores.view(-1)[rows][:, :, None] + blocks[rows, which]  # (N, P, C)
    offsets = torch.arange(block, device=scores.device)
    cand_values = values.view(n, -1)  # (N, P * C)
    cand_rows = rows[:, :, None].expand(-1, -1, block).reshape(n, -1)
    cand_tokens = (which[:, :, None] * block + offsets).view(n, -1)
    if body < vocab:
        tail = log_probs[:, body:]  # (N * K, V - body)
        cand_values = torch.cat([cand_values, (scores.view(-1, 1) + tail).view(n, -1)], dim=1)
        beams = torch.arange(k, device=scores.device).repeat_interleave(tail.size(1))
        cand_rows = torch.cat([cand_rows, (first_row + beams).expand(n, -1)], dim=1)
        tail_tokens = torch.arange(body, vocab, device=scores.device).repeat(k)
        cand_tokens = torch.cat([cand_tokens, tail_tokens.expand(n, -1)], dim=1)
    top_values, idx = cand_values.topk(width, dim=1)  # (N, W)
    return top_values, cand_rows.gather(1, idx), cand_tokens.gather(1, idx)


def best_tokens(log_probs: Tensor, *, block: int | None = None) -> tuple[Tensor, Tensor]:
    """What `log_probs.max(dim=1)` returns, the first of equal maxima included.

    Args:
        log_probs: (R, V).
        block: C, tokens per block (default `block_size(V)`; at most V).

    Returns:
        values (R,) and tokens (R,).
    """
    rows, vocab = log_probs.shape
    block = min(block or block_size(vocab), vocab)
    n_blocks = vocab // block
    body = n_blocks * block
    blocks = log_probs[:, :body].unflatten(1, (n_blocks, block))  # (R, nb, C), a view
    values, which = blocks.amax(dim=2).max(dim=1)  # (R,): the first block holding the maximum
    within = blocks[torch.arange(rows, device=log_probs.device), which].max(dim=1).indices
    tokens = which * block + within
    if body < vocab:  # the V % C tokens past the blocks win only when strictly better
        tail_values, tail_tokens = log_probs[:, body:].max(dim=1)
        later = tail_values > values
        values = torch.where(later, tail_values, values)
        tokens = torch.where(later, tail_tokens + body, tokens)
    return values, tokens
