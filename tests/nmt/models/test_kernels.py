"""The inference fast path (oneDNN linear, one-step GRU) computes what torch's modules compute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nmt.models import kernels


@pytest.fixture(autouse=True)
def _fast_kernels_back_on():
    yield
    kernels.use_fast_kernels(True)


@pytest.mark.parametrize("layers", [1, 2])
def test_gru_step_equals_nn_gru(layers: int) -> None:
    torch.manual_seed(0)
    rnn = nn.GRU(6, 5, num_layers=layers, batch_first=True).eval()
    x, h = torch.randn(3, 6), torch.randn(layers, 3, 5)
    with torch.inference_mode():
        assert kernels.can_step_gru(rnn, x)
        _, want = rnn(x[:, None], h)
        got = kernels.gru_step(rnn, x, h)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tanh", [False, True])
def test_linear_equals_functional_linear(tanh: bool) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(7, 4)
    x = torch.randn(2, 3, 7)
    want = layer(x).tanh() if tanh else layer(x)
    with torch.inference_mode():
        got = kernels.apply_linear(layer, x, tanh=tanh)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_fast_path_only_without_autograd_and_when_enabled() -> None:
    rnn = nn.GRU(4, 4, batch_first=True)
    x = torch.randn(2, 4)
    assert not kernels.can_step_gru(rnn, x)  # autograd on: training keeps torch's kernels
    with torch.inference_mode():
        kernels.use_fast_kernels(False)
        assert not kernels.can_step_gru(rnn, x)
        kernels.use_fast_kernels(True)
        assert kernels.can_step_gru(rnn, x) == kernels._MKLDNN
        assert not kernels.can_step_gru(nn.GRU(4, 4, batch_first=True, bidirectional=True), x)
