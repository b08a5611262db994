"""Models: CPU decoding kernels, chosen for a whole model in one place (`use_fast_cpu_kernels`).

At decoding shapes torch's default fp32 GEMM (MKL) runs below what oneDNN reaches
(benchmarks/RESULTS.md measures both), and nn.GRU's sequence machinery is overhead for the one
time step a decoding step runs. The model code is plain PyTorch (`nn.Linear`, `nn.GRU`, the
decoder's `TiedProjection`); `use_fast_cpu_kernels` (called by the Translator) gives those modules
a subclass whose forward runs `torch.ops.mkldnn._linear_pointwise` and, for one step of a
unidirectional GRU, a cell written out of those products. Only inference takes this path: with
autograd on, the subclasses run torch's kernels, which trained faster here than oneDNN's
(benchmarks/RESULTS.md, 2026-12-01).

The subclasses add no state, so the swap is a change of `__class__`: parameters, state_dict keys
and hooks stay as they were, and `use_torch_kernels` undoes it (int8 `quantize_dynamic` matches
module types exactly, so a model goes back to plain modules before it is quantised). At run time
each module still takes the fast path only for float32 CPU tensors (CUDA, autocast and int8 run
torch's kernels). Results differ from torch's only by float rounding.
"""

from __future__ import annotations

from typing import TypeVar, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nmt.models.decoder import TiedProjection

ModuleT = TypeVar("ModuleT", bound=nn.Module)

_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _cpu_fp32(x: Tensor, weight: Tensor) -> bool:
    return (_MKLDNN and x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32)


def _onednn(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, with oneDNN for float32 CPU tensors without autograd.

    Args:
        x: (..., I).
        weight: (O, I).
        bias: (O,) or None.
    """
    if torch.is_grad_enabled() or not _cpu_fp32(x, weight):
        return F.linear(x, weight, bias)
    return _onednn(x, weight, bias)


class OneDNNLinear(nn.Linear):
    def forward(self, input: Tensor) -> Tensor:
        if self.out_features == 1:
            # A matrix-vector product (Bahdanau's score vector): torch's kernel measured faster.
            return super().forward(input)
        return linear(input, self.weight, self.bias)


class OneDNNTiedProjection(TiedProjection):
    def forward(self, x: Tensor, weight: Tensor) -> Tensor:
        return linear(x, weight)


class StepGRU(nn.GRU):
    """nn.GRU; one time step without autograd runs `gru_step` (no sequence machinery)."""

    def forward(self, input, hx=None):  # type: ignore[override]  # nn.GRU's own signature
        if (isinstance(input, Tensor) and hx is not None and self.batch_first
                and input.dim() == 3 and input.size(1) == 1 and not self.bidirectional
                and self.bias and not torch.is_grad_enabled()
                and _cpu_fp32(input, cast(Tensor, self.weight_ih_l0))):
            hidden = gru_step(self, input[:, 0], hx)  # (L, B, H)
            return hidden[-1].unsqueeze(1), hidden
        return super().forward(input, hx)


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


_FAST: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: OneDNNLinear, nn.GRU: StepGRU, TiedProjection: OneDNNTiedProjection,
}
_TORCH = {fast: plain for plain, fast in _FAST.items()}


def _swap(model: ModuleT, classes: dict[type[nn.Module], type[nn.Module]]) -> ModuleT:
    for module in model.modules():
        # Exact types: a subclass (an int8 module, a user's own layer) keeps its forward.
        new = classes.get(type(module))
        if new is not None:
            module.__class__ = new
    return model


def use_fast_cpu_kernels(model: ModuleT) -> ModuleT:
    """Gives `model`'s Linear, GRU and tied-output modules the oneDNN kernels, in place.

    Without oneDNN in this torch build the model is left as it is.
    """
    return _swap(model, _FAST) if _MKLDNN else model


def use_torch_kernels(model: ModuleT) -> ModuleT:
    """Undoes `use_fast_cpu_kernels`, in place: plain torch modules again."""
    return _swap(model, _TORCH)
