"""The two-stage rankings return what a full ranking of all K * V sums, and Tensor.max, return."""

from __future__ import annotations

import pytest
import torch

from nmt.decoding.topk import best_tokens, block_size, top_extensions
from tests.nmt.decoding.conftest import full_ranking

NEG_INF = float("-inf")


@pytest.mark.parametrize("vocab", [2, 7, 60, 61, 1000])
@pytest.mark.parametrize("beams", [1, 2, 5])
@pytest.mark.parametrize("block", [None, 1, 3, 8, 10_000])
def test_two_stages_rank_like_a_full_ranking(vocab: int, beams: int, block: int | None) -> None:
    g = torch.Generator().manual_seed(vocab * 100 + beams)
    log_probs = torch.randn(4 * beams, vocab, generator=g).log_softmax(dim=1)
    log_probs[0, : vocab // 2] = NEG_INF  # banned tokens
    scores = torch.randn(4, beams, generator=g)
    scores[1, 1:] = NEG_INF  # a first step: one live beam
    width = min(2 * beams, beams * vocab)
    want = full_ranking(scores, log_probs, width)
    got = top_extensions(scores, log_probs, width, block=block)
    assert torch.equal(got[0], want[0])
    live = want[0] > NEG_INF  # which -inf extension fills a gap is arbitrary
    assert torch.equal(got[1][live], want[1][live]) and torch.equal(got[2][live], want[2][live])


def test_block_size_is_near_the_square_root_of_half_the_vocabulary() -> None:
    assert block_size(8000) == 64
    assert [block_size(v) for v in (1, 2, 60)] == [1, 1, 4]


@pytest.mark.parametrize("vocab", [2, 7, 60, 61, 1000])
@pytest.mark.parametrize("block", [None, 1, 3, 8, 10_000])
def test_best_tokens_is_max_over_the_vocabulary(vocab: int, block: int | None) -> None:
    g = torch.Generator().manual_seed(vocab)
    log_probs = torch.randn(6, vocab, generator=g).log_softmax(dim=1)
    log_probs[0, : vocab // 2] = NEG_INF
    log_probs[1] = 0.0  # all equal: the first token, as Tensor.max returns
    log_probs[2, -1] = log_probs[2, 0] = 1.0  # equal maxima at both ends, the tail included
    values, tokens = best_tokens(log_probs, block=block)
    want = log_probs.max(dim=1)
    assert torch.equal(values, want.values) and torch.equal(tokens, want.indices)
