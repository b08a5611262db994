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

`use_bf16_products` (the Translator's `precision="bf16"` on a CPU) goes one step further: the
products run in bfloat16, which CPUs with AMX compute several times faster than float32
(benchmarks/RESULTS.md), while the rest of decoding stays float32. That changes results by more
than rounding, so it is a choice, measured in BLEU, not a default.
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


LowCopies = dict[int, tuple[Tensor, int, Tensor]]  # id -> (tensor, its _version, bf16 copy)


def _low(copies: LowCopies, t: Tensor) -> Tensor:
    """`t`'s bfloat16 copy, made once and again only after `t` changed in place."""
    hit = copies.get(id(t))
    if hit is None or hit[0] is not t or hit[1] != t._version:
        hit = (t, t._version, t.detach().to(torch.bfloat16))
        copies[id(t)] = hit
    return hit[2]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None,
           low: LowCopies | None = None) -> Tensor:
    """x @ weight.T + bias, with oneDNN for float32 CPU tensors without autograd.

    Args:
        x: (..., I).
        weight: (O, I).
        bias: (O,) or None.
        low: where the module keeps bfloat16 copies of its weights (`use_bf16_products`): the
            product then runs in bfloat16 (AMX on CPUs that have it) and returns float32.
    """
    if torch.is_grad_enabled() or not _cpu_fp32(x, weight):
        return F.linear(x, weight, bias)
    if low is not None:
        low_bias = None if bias is None else _low(low, bias)
        return _onednn(x.to(torch.bfloat16), _low(low, weight), low_bias).float()
    return _onednn(x, weight, bias)


def _copies(module: nn.Module) -> LowCopies | None:
    """The module's bfloat16 weight copies, when `use_bf16_products` gave it some."""
    return module.__dict__.get("_bf16_copies")


class OneDNNLinear(nn.Linear):
    def forward(self, input: Tensor) -> Tensor:
        if self.out_features == 1:
            # A matrix-vector product (Bahdanau's score vector): torch's kernel measured faster.
            return super().forward(input)
        return linear(input, self.weight, self.bias, _copies(self))


class OneDNNTiedProjection(TiedProjection):
    def forward(self, x: Tensor, weight: Tensor) -> Tensor:
        return linear(x, weight, low=_copies(self))


class StepGRU(nn.GRU):
    """nn.GRU; one time step without autograd runs `gru_step` (no sequence machinery)."""

    def forward(self, input, hx=None):  # type: ignore[override]  # nn.GRU's own signature
        if (isinstance(input, Tensor) and hx is not None and self.batch_first
                and input.dim() == 3 and input.size(1) == 1 and not self.bidirectional
                and self.bias and not torch.is_grad_enabled()
                and _cpu_fp32(input, cast(Tensor, self.weight_ih_l0))):
            hidden = gru_step(self, input[:, 0], hx, _copies(self))  # (L, B, H)
            return hidden[-1].unsqueeze(1), hidden
        return super().forward(input, hx)


def gru_step(rnn: nn.GRU, x: Tensor, hidden: Tensor, low: LowCopies | None = None) -> Tensor:
    """One time step of a (multi-layer) unidirectional GRU, as nn.GRU computes it.

    Args:
        x: (B, I) input.
        hidden: (L, B, H) previous state.
        low: bfloat16 weight copies (see `linear`); the gates stay float32.

    Returns:
        (L, B, H) next state; its last layer is the step's output.
    """
    layers = []
    for layer in range(rnn.num_layers):
        h = hidden[layer]
        gi = linear(x, getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"bias_ih_l{layer}"),
                    low)
        gh = linear(h, getattr(rnn, f"weight_hh_l{layer}"), getattr(rnn, f"bias_hh_l{layer}"),
                    low)
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
    """Undoes `use_fast_cpu_kernels` and `use_bf16_products`, in place: plain torch modules
    again."""
    for module in model.modules():
        module.__dict__.pop("_bf16_copies", None)
    return _swap(model, _TORCH)


def bf16_products_supported() -> bool:
    """Whether this torch and CPU run oneDNN's bfloat16 products (fast with AMX or
    AVX512-BF16; emulated, and slower than float32, on other AVX512 CPUs)."""
    return _MKLDNN and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def use_bf16_products(model: ModuleT) -> ModuleT:
    """After `use_fast_cpu_kernels`: the matrix products of decoding (Linear layers, the tied
    output layer, the decoder GRU's step) run in bfloat16 on bfloat16 copies of the weights,
    made at first use; the inputs are rounded to bfloat16, the outputs come back float32, and
    everything between the products (gates, tanh, softmax, the beam's scores) stays float32.
    Inference only: training runs torch's kernels in float32 whatever this says.
    """
    if not bf16_products_supported():
        raise RuntimeError("this CPU or torch build has no oneDNN bfloat16 products")
    for module in model.modules():
        if type(module) in _TORCH:  # the fast kernels' classes
            module.__dict__["_bf16_copies"] = {}
    return model
