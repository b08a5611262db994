"""Training: label-smoothed cross-entropy over real target tokens, and scheduled sampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from nmt.data.batching import Batch
from nmt.models.seq2seq import Seq2Seq
from nmt.tokenization import PAD_ID


def sequence_loss(
    logits: Tensor, tgt_out: Tensor, *, label_smoothing: float
) -> tuple[Tensor, Tensor]:
    """Summed loss over non-padding tokens.

    Args:
        logits: (B, T, V).
        tgt_out: (B, T) target ids + EOS, PAD_ID where padded.

    Returns:
        (smoothed loss sum, plain negative log-likelihood sum), both scalars; the second is what
        perplexity is computed from.
    """
    flat_logits = logits.reshape(-1, logits.size(-1)).float()
    flat_tgt = tgt_out.reshape(-1)
    loss = F.cross_entropy(
        flat_logits, flat_tgt, ignore_index=PAD_ID, label_smoothing=label_smoothing, reduction="sum"
    )
    if label_smoothing == 0.0:
        return loss, loss.detach()
    with torch.no_grad():
        nll = F.cross_entropy(flat_logits, flat_tgt, ignore_index=PAD_ID, reduction="sum")
    return loss, nll


def scheduled_sampling_logits(
    model: Seq2Seq, batch: Batch, *, sample_prob: float, generator: torch.Generator | None = None
) -> Tensor:
    """Teacher forcing where each input token is replaced, with probability `sample_prob`, by the
    model's own previous prediction (Bengio et al., 2015). Runs step by step.

    Returns:
        (B, T, V) logits.
    """
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    steps = []
    prev = batch.tgt_in[:, 0]
    for t in range(batch.tgt_in.size(1)):
        attentional, state, _ = model.decoder.step(prev, state, enc)
        logits = model.decoder.logits(attentional)  # (B, V)
        steps.append(logits)
        if t + 1 < batch.tgt_in.size(1):
            gold = batch.tgt_in[:, t + 1]
            draw = torch.rand(gold.shape, generator=generator, device=gold.device)
            predicted = logits.detach().argmax(dim=-1)
            prev = torch.where(draw < sample_prob, predicted, gold)
    return torch.stack(steps, dim=1)
