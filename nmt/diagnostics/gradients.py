"""Diagnostics: gradient flow through time: dL/dh_t per encoder step, gradient norms in training.

torch's RNN modules run the whole sequence in one call, so the per-step states h_t are not graph
nodes of their own. `unrolled_encode` runs the same module one step at a time (same weights,
same maths) so that every h_t is a tensor autograd can differentiate against.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.data.batching import Batch
from nmt.models.encoder import EncoderOutput, RNNEncoder
from nmt.models.seq2seq import Seq2Seq
from nmt.training.loss import sequence_loss


def unrolled_encode(encoder: RNNEncoder, src: Tensor) -> tuple[EncoderOutput, list[Tensor]]:
    """Encodes unpadded rows one step at a time.

    Args:
        encoder: a unidirectional RNNEncoder.
        src: (B, S) ids, every row S real tokens (no padding).

    Returns:
        The EncoderOutput `encoder(src, lengths)` would give, and the S hidden states h_t, each
        (L, B, H), as graph nodes (for an LSTM the h part; its memory cell is not included).
    """
    if encoder.directions != 1:
        raise ValueError("unrolled_encode needs a unidirectional encoder")
    emb = encoder.emb_dropout(encoder.embedding(src))  # (B, S, E)
    state: Tensor | tuple[Tensor, Tensor] | None = None
    hiddens: list[Tensor] = []
    for t in range(src.size(1)):
        _, state = encoder.rnn(emb[:, t : t + 1], state)
        hiddens.append(state[0] if isinstance(state, tuple) else state)
    assert state is not None
    cell = state[1] if isinstance(state, tuple) else None
    # The top layer's h_t is the encoder output at step t; use the very same tensor.
    outputs = torch.stack([h[-1] for h in hiddens], dim=1)  # (B, S, H)
    enc = EncoderOutput(
        outputs=encoder.out_dropout(outputs),
        mask=src != 0,
        final=hiddens[-1][-1],
        final_cell=None if cell is None else cell[-1],
    )
    return enc, hiddens


def step_gradient_norms(model: Seq2Seq, batch: Batch) -> Tensor:
    """||dL/dh_t|| for t = 1..S, averaged over the batch's rows.

    L is the mean per-token cross-entropy of the teacher-forced target (no label smoothing),
    as in training; h_t holds all encoder layers at step t.

    Returns:
        (S,) float tensor.
    """
    enc, hiddens = unrolled_encode(model.encoder, batch.src)
    if model.decoder.attention is not None:
        enc = EncoderOutput(outputs=enc.outputs, mask=enc.mask, final=enc.final,
                            final_cell=enc.final_cell,
                            proj_keys=model.decoder.attention.project_keys(enc.outputs))
    logits = model.decoder(batch.tgt_in, model.init_state(enc), enc)
    loss, _ = sequence_loss(logits, batch.tgt_out, label_smoothing=0.0)
    loss = loss / max(1, batch.num_tgt_tokens)
    grads = torch.autograd.grad(loss, hiddens)
    # (L, B, H) -> per row norm over layers and units -> mean over rows.
    return torch.stack([g.transpose(0, 1).flatten(1).norm(dim=1).mean() for g in grads]).detach()


@dataclass(frozen=True)
class TrainingTrace:
    grad_norms: list[float]  # global gradient norm before clipping, one per step
    losses: list[float]  # mean per-token loss, one per step
    model: Seq2Seq  # the model after the steps


def train_trace(model: Seq2Seq, batches: list[Batch], *, lr: float, clip_norm: float
                ) -> TrainingTrace:
    """Trains a copy of `model` for one Adam step per batch, recording the gradient norms.

    Args:
        clip_norm: clip the global gradient norm to this (0: no clipping). The recorded norm is
            the one before clipping, i.e. what the clipping saw.
    """
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    max_norm = clip_norm if clip_norm > 0 else float("inf")
    norms, losses = [], []
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = sequence_loss(model(batch), batch.tgt_out, label_smoothing=0.0)
        loss = loss / max(1, batch.num_tgt_tokens)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
        losses.append(float(loss.detach()))
        optimizer.step()
    return TrainingTrace(grad_norms=norms, losses=losses, model=model.eval())


def early_late_ratio(norms: Tensor, span: int = 5) -> float:
    """Mean ||dL/dh_t|| over the first `span` steps divided by that over the last `span`."""
    span = max(1, min(span, norms.numel() // 2))
    return float(norms[:span].mean() / norms[-span:].mean().clamp_min(1e-45))
