"""Decoding test fixtures: tiny random models (one per cell/attention variant) and toy batches."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from nmt.data.batching import make_source_batch
from nmt.tokenization import BOS_ID, EOS_ID
from tests.support.tiny import tiny_config, tiny_model

VARIANTS = {
    "gru-bahdanau": {"cell": "gru", "attention": "bahdanau"},
    "lstm-luong-feed": {"cell": "lstm", "attention": "luong_general", "input_feeding": True},
    "rnn-none": {"cell": "rnn", "attention": "none"},
    "gru-dot-untied": {"cell": "gru", "attention": "luong_dot", "tie_output": False},
}


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def model(request):
    return tiny_model(tiny_config(model=VARIANTS[request.param]), seed=1)


@pytest.fixture(scope="session")
def attn_model():
    return tiny_model(tiny_config(), seed=2)


@torch.inference_mode()
def rescore(model, src: list[int], tokens: list[int]) -> tuple[float, list[Tensor]]:
    """Teacher-forced log P(tokens + EOS | src) and the attention rows, one step at a time."""
    b = make_source_batch([src])
    enc = model.encode(b.src, b.src_lengths)
    state = model.init_state(enc)
    total, rows = 0.0, []
    for prev, nxt in zip([BOS_ID, *tokens], [*tokens, EOS_ID], strict=True):
        log_probs, state, attn = model.decode_step(torch.tensor([prev]), state, enc)
        total += float(log_probs[0, nxt])
        if attn is not None:
            rows.append(attn[0])
    return total, rows


def full_ranking(scores: Tensor, log_probs: Tensor, width: int) -> tuple[Tensor, Tensor, Tensor]:
    """The straightforward `topk.top_extensions`: every (beam, token) sum of a sentence, ranked
    at once. scores (N, K), log_probs (N * K, V) -> values, flat rows, tokens, each (N, width)."""
    n, k = scores.shape
    vocab = log_probs.size(1)
    cand = (scores[:, :, None] + log_probs.view(n, k, vocab)).view(n, k * vocab)
    values, idx = cand.topk(width, dim=1)
    rows = torch.arange(n, device=idx.device)[:, None] * k + torch.div(idx, vocab,
                                                                         rounding_mode="floor")
    return values, rows, idx % vocab


def random_sources(n: int, *, seed: int = 0, vocab: int = 60, max_words: int = 12
                   ) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_words + 1, (n,), generator=g).tolist()
    return [torch.randint(4, vocab, (k,), generator=g).tolist() for k in lengths]


@pytest.fixture(scope="session")
def sources() -> list[list[int]]:
    return random_sources(12)


@pytest.fixture(scope="session")
def batch(sources):
    return make_source_batch(sources)
