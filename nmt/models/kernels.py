"""Models: CPU kernels: oneDNN matrix products (inference and training) and a one-step GRU cell.

On the CPUs we serve from, torch's default fp32 GEMM (MKL) runs well below what oneDNN's
AVX-512 kernels reach (benchmarks/RESULTS.md measures both at decoding shapes), so the decoder's
Linear layers and its output projection go through `torch.ops.mkldnn._linear_pointwise`: in
inference directly (with tanh fused where the layer has one), in training through
`_TrainLinear`, which uses the same kernel for the two backward products. Only float32 CPU
tensors and plain `nn.Linear`/`nn.GRU` modules take this path (int8-quantised modules run their
own kernels; CUDA runs torch's). Results differ from the default kernels only by float rounding.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_enabled = True


def use_fast_kernels(enabled: bool) -> None:
    """Turns the fast path on (the default) or off, e.g. to compare the two in a benchmark."""
    global _enabled
    _enabled = enabled


def _cpu_fp32(x: Tensor, weight: Tensor) -> bool:
    return (_enabled and _MKLDNN and x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32)


def _fast(x: Tensor, weight: Tensor) -> bool:
    return _cpu_fp32(x, weight) and not torch.is_grad_enabled()


def _onednn(x: Tensor, weight: Tensor, bias: Tensor | None = None, post: str = "none") -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, post, [], "")


class _TrainLinear(torch.autograd.Function):
    """x @ W.T + b with oneDNN in the forward pass and in both backward products."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        g = grad.reshape(-1, grad.size(-1))  # (N, O)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _onednn(g, weight.t().contiguous()).view(x.shape)  # (N, O) @ (O, I)
        if ctx.needs_input_grad[1]:
            xs = x.reshape(-1, x.size(-1))  # (N, I)
            grad_w = _onednn(g.t().contiguous(), xs.t().contiguous())  # (O, N) @ (N, I)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(0)
        return grad_x, grad_w, grad_b


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, tanh: bool = False
           ) -> Tensor:
    """x @ weight.T + bias, optionally followed by tanh (fused on the fast path).

    Args:
        x: (..., I).
        weight: (O, I).
        bias: (O,) or None.
    """
    if _fast(x, weight):
        return _onednn(x, weight, bias, "tanh" if tanh else "none")
    if _cpu_fp32(x, weight):  # training on the CPU: the same kernels, with their backward
        out = _TrainLinear.apply(x, weight, bias)
    else:
        out = F.linear(x, weight, bias)
    return out.tanh() if tanh else out


def apply_linear(module: nn.Module, x: Tensor, *, tanh: bool = False) -> Tensor:
    """`module(x)` (then tanh), through `linear` when `module` is a plain float nn.Linear."""
    if type(module) is nn.Linear:
        return linear(x, module.weight, module.bias, tanh=tanh)
    out = module(x)
    return out.tanh() if tanh else out


def can_step_gru(rnn: nn.Module, x: Tensor) -> bool:
    """True when `gru_step` may replace `rnn` for one time step."""
    # nn.Module.__getattr__ types the weight `Tensor | Module`; on an nn.GRU it is a Parameter.
    return (type(rnn) is nn.GRU and not rnn.bidirectional and rnn.bias
            and _fast(x, cast(Tensor, rnn.weight_ih_l0)))


def gru_step(rnn: nn.GRU, x: Tensor, hidden: Tensor) -> Tensor:
    """One time step of a (multi-layer) unidirectional GRU, as nn.GRU computes it.

    Args:
        x: (B, I) input.
        hidden: (L, B, H) previous state.

    Returns:
        (L, B, H) next state; its last layer is the step's output.
    """
    layers = []
    for layer in range(rnn.num_layers):
        h = hidden[layer]
        gi = linear(x, getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"bias_ih_l{layer}"))
        gh = linear(h, getattr(rnn, f"weight_hh_l{layer}"), getattr(rnn, f"bias_hh_l{layer}"))
        i_r, i_z, i_n = gi.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(torch.addcmul(i_n, r, h_n))
        x = torch.lerp(n, h, z)  # (1 - z) * n + z * h
        layers.append(x)
    return torch.stack(layers)
