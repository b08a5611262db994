"""Tests for nmt.diagnostics: per-step gradient norms, the unrolled encoder, long batches."""

from __future__ import annotations

import pytest
import torch

from nmt.config import ModelConfig
from nmt.data.batching import make_batch
from nmt.diagnostics.gradients import (
    early_late_ratio,
    step_gradient_norms,
    train_trace,
    unrolled_encode,
)
from nmt.diagnostics.long_batches import joined_pairs, long_batches
from nmt.models.seq2seq import build_model

VOCAB = 50


def _model(cell: str, *, attention: str = "none", layers: int = 1):
    cfg = ModelConfig(cell=cell, emb_dim=16, enc_hidden=24, dec_hidden=24, enc_layers=layers,
                      bidirectional=False, attention=attention, attn_dim=8, dropout=0.0,
                      emb_dropout=0.0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_model(cfg, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB)


def _batch(src_len: int, rows: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, VOCAB, (rows, src_len - 1), generator=g).tolist()  # + EOS = src_len
    tgt = torch.randint(4, VOCAB, (rows, 6), generator=g).tolist()
    return make_batch(src, tgt)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_unrolled_encoder_equals_the_fused_one(cell: str) -> None:
    model = _model(cell, layers=2).eval()
    batch = _batch(9)
    enc, hiddens = unrolled_encode(model.encoder, batch.src)
    ref = model.encoder(batch.src, batch.src_lengths)
    assert len(hiddens) == 9 and hiddens[0].shape == (2, 4, 24)
    assert torch.allclose(enc.outputs, ref.outputs, atol=1e-6)
    assert torch.allclose(enc.final, ref.final, atol=1e-6)
    if cell == "lstm":
        assert torch.allclose(enc.final_cell, ref.final_cell, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("attention", ["none", "bahdanau"])
def test_one_finite_norm_per_time_step(cell: str, attention: str) -> None:
    norms = step_gradient_norms(_model(cell, attention=attention).eval(), _batch(12))
    assert norms.shape == (12,)
    assert torch.isfinite(norms).all() and (norms > 0).all()


def test_norms_match_a_per_row_autograd_computation() -> None:
    """The batch mean of per-row norms: row r's norm is that of its own loss share."""
    model = _model("gru").eval().double()
    batch = _batch(7, rows=3)
    norms = step_gradient_norms(model, batch)
    enc, hiddens = unrolled_encode(model.encoder, batch.src)
    logits = model.decoder(batch.tgt_in, model.init_state(enc), enc)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), batch.tgt_out.flatten(),
                                             ignore_index=0, reduction="sum")
    loss = loss / batch.num_tgt_tokens
    grads = torch.autograd.grad(loss, hiddens)
    expected = torch.stack([g[:, r].norm() for g in grads for r in range(3)]).view(7, 3).mean(1)
    assert torch.allclose(norms, expected.to(norms.dtype))


def test_tanh_rnn_gradient_vanishes_over_a_long_sequence() -> None:
    model = _model("rnn").eval().double()  # float64: the early norms are tiny
    norms = step_gradient_norms(model, _batch(120))
    # Early steps get orders of magnitude less gradient than late ones.
    assert early_late_ratio(norms) < 1e-3
    assert norms[0] < 1e-3 * norms[-1]


def test_training_trace_records_the_norm_before_clipping() -> None:
    model = _model("lstm")
    batches = [_batch(10, seed=s) for s in range(3)]
    clipped = train_trace(model, batches, lr=0.05, clip_norm=1e-3)
    free = train_trace(model, batches, lr=0.05, clip_norm=0.0)
    assert len(clipped.grad_norms) == len(free.grad_norms) == 3
    assert clipped.grad_norms[0] == pytest.approx(free.grad_norms[0])  # same start, same batch
    assert clipped.grad_norms[0] > 1e-3  # so the first step was clipped ...
    assert clipped.losses[1] != free.losses[1]  # ... and the runs diverge
    assert all(p.grad is None for p in model.parameters())  # the model itself is untouched


def test_joined_pairs_are_consecutive_and_cut_to_length() -> None:
    src = [[10, 11], [12, 13, 14], [15], [16, 17]]
    tgt = [[20], [21, 22], [23], [24]]
    (pair,) = joined_pairs(src, tgt, src_len=5, tgt_len=10, count=1, seed=0)
    start = [s[0] for s in src].index(pair[0][0])
    expected_src = sum((src[(start + k) % 4] for k in range(4)), [])[:4]
    assert pair[0] == expected_src
    batches = long_batches(src, tgt, src_len=5, tgt_len=3, batch_size=2, n_batches=3, seed=1)
    assert len(batches) == 3
    assert all(b.src.shape == (2, 5) and bool((b.src != 0).all()) for b in batches)
    assert all(b.tgt_out.size(1) <= 3 for b in batches)
