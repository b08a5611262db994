"""The training loss: torch's label-smoothed cross-entropy over real tokens, and the plain NLL."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nmt.tokenization import PAD_ID
from nmt.training.loss import sequence_loss


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.3])
def test_matches_torch_cross_entropy_in_value_and_gradient(label_smoothing: float) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=gen, requires_grad=True)
    tgt = torch.randint(PAD_ID + 1, 11, (3, 5), generator=gen)
    tgt[0, 3:] = PAD_ID  # padded positions must not count
    tgt[2, 1:] = PAD_ID

    loss, nll = sequence_loss(logits, tgt, label_smoothing=label_smoothing)
    (grad,) = torch.autograd.grad(loss, logits)

    flat, flat_tgt = logits.reshape(-1, 11), tgt.reshape(-1)
    expected = F.cross_entropy(flat, flat_tgt, ignore_index=PAD_ID,
                               label_smoothing=label_smoothing, reduction="sum")
    (expected_grad,) = torch.autograd.grad(expected, logits)
    expected_nll = F.cross_entropy(flat, flat_tgt, ignore_index=PAD_ID, reduction="sum")

    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(nll, expected_nll.detach())
    torch.testing.assert_close(grad, expected_grad)
    assert grad[0, 3:].abs().sum() == 0 and not nll.requires_grad
