"""The fast CPU kernels (oneDNN products, one-step GRU) compute what torch's modules compute, are
chosen for a whole model in one call, and undo cleanly (int8 quantisation needs plain modules)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nmt.config import ModelConfig
from nmt.models import kernels
from nmt.models.decoder import TiedProjection
from nmt.models.seq2seq import build_model

needs_onednn = pytest.mark.skipif(not kernels._MKLDNN, reason="this torch build has no oneDNN")


@pytest.mark.parametrize("layers", [1, 2])
def test_gru_step_equals_nn_gru(layers: int) -> None:
    torch.manual_seed(0)
    rnn = nn.GRU(6, 5, num_layers=layers, batch_first=True).eval()
    x, h = torch.randn(3, 6), torch.randn(layers, 3, 5)
    with torch.inference_mode():
        _, want = rnn(x[:, None], h)
        got = kernels.gru_step(rnn, x, h)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@needs_onednn
def test_swapped_modules_compute_what_torch_computes_forward_and_backward() -> None:
    torch.manual_seed(0)
    layer, rnn = nn.Linear(7, 4), nn.GRU(7, 5, num_layers=2, batch_first=True)
    x, h = torch.randn(2, 1, 7, requires_grad=True), torch.randn(2, 2, 5)
    fast_layer, fast_rnn = copy.deepcopy(layer), copy.deepcopy(rnn)
    kernels.use_fast_cpu_kernels(fast_layer)
    kernels.use_fast_cpu_kernels(fast_rnn)
    assert type(fast_layer) is kernels.OneDNNLinear and type(fast_rnn) is kernels.StepGRU

    layer(x).sum().backward()
    want_grad, x.grad = x.grad, None
    fast_layer(x).sum().backward()  # autograd on: torch's kernels
    torch.testing.assert_close(x.grad, want_grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast_layer.weight.grad, layer.weight.grad, rtol=1e-5, atol=1e-6)
    with torch.inference_mode():
        want_out, want_h = rnn(x, h)
        got_out, got_h = fast_rnn(x, h)  # one step: gru_step
        torch.testing.assert_close(got_h, want_h, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got_out, want_out, rtol=1e-5, atol=1e-6)
        long = torch.randn(2, 3, 7)  # several steps: nn.GRU's own kernel
        torch.testing.assert_close(fast_rnn(long, h)[0], rnn(long, h)[0])


@needs_onednn
def test_one_call_swaps_a_whole_model_keeps_its_state_and_undoes() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(emb_dim=8, enc_hidden=8, dec_hidden=8, attn_dim=8),
                        src_vocab_size=20, tgt_vocab_size=20).eval()
    keys = list(model.state_dict())
    src, lengths = torch.randint(4, 20, (2, 5)), torch.tensor([5, 3])
    prev = torch.tensor([1, 1])

    def two_steps() -> torch.Tensor:
        enc = model.encode(src, lengths)
        state = model.init_state(enc)
        first, state, _ = model.decode_step(prev, state, enc)
        second, _, _ = model.decode_step(first.argmax(-1), state, enc)
        return torch.stack([first, second])  # (2, B, V) log-probs

    with torch.inference_mode():
        want = two_steps()
        kernels.use_fast_cpu_kernels(model)
        got = two_steps()
    types = {type(m) for m in model.modules()}
    assert {kernels.OneDNNLinear, kernels.StepGRU, kernels.OneDNNTiedProjection} <= types
    assert not types & {nn.Linear, nn.GRU, TiedProjection}
    assert list(model.state_dict()) == keys  # checkpoints stay interchangeable
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    kernels.use_torch_kernels(model)
    assert not any(type(m).__module__ == kernels.__name__ for m in model.modules())


def test_subclasses_and_other_dtypes_keep_torch_kernels() -> None:
    class MyLinear(nn.Linear):
        pass

    mine = kernels.use_fast_cpu_kernels(MyLinear(3, 3))
    assert type(mine) is MyLinear  # only exact types are swapped (int8 modules, users' layers)
    double = kernels.use_fast_cpu_kernels(nn.Linear(3, 3).to(torch.float64))
    x = torch.randn(2, 3, dtype=torch.float64)
    torch.testing.assert_close(double(x), torch.nn.functional.linear(x, double.weight, double.bias))


needs_bf16 = pytest.mark.skipif(not kernels.bf16_products_supported(),
                                reason="this CPU or torch build has no oneDNN bfloat16 products")


def bf16_linear(inputs: int, outputs: int) -> nn.Linear:
    layer = nn.Linear(inputs, outputs)
    kernels.use_fast_cpu_kernels(layer)
    return kernels.use_bf16_products(layer)


@needs_bf16
def test_bf16_products_round_the_inputs_and_weights_only() -> None:
    """A bf16 product is the float32 product of the bf16-rounded operands (within bf16's
    output rounding), returned as float32; autograd still runs torch's float32 kernels."""
    torch.manual_seed(0)
    layer = bf16_linear(64, 32)
    x = torch.randn(5, 64)
    with torch.inference_mode():
        got = layer(x)
        rounded = (x.bfloat16().float() @ layer.weight.bfloat16().float().T
                   + layer.bias.bfloat16().float())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, rounded, rtol=1e-2, atol=1e-2)
    assert not torch.equal(got, x @ layer.weight.T + layer.bias)  # it did round
    torch.testing.assert_close(layer(x), x @ layer.weight.T + layer.bias)  # autograd: fp32


@needs_bf16
def test_bf16_weight_copies_follow_a_changed_weight() -> None:
    layer = bf16_linear(8, 4)
    x = torch.ones(1, 8)
    with torch.inference_mode():
        before = layer(x)
    with torch.no_grad():
        layer.weight.mul_(2.0)  # in place: the copy is made again
        layer.bias.zero_()
    with torch.inference_mode():
        after = layer(x)
    torch.testing.assert_close(after, (x @ layer.weight.T).bfloat16().float(), rtol=1e-2,
                               atol=1e-2)
    assert not torch.allclose(after, before)
    kernels.use_torch_kernels(layer)
    assert type(layer) is nn.Linear and "_bf16_copies" not in layer.__dict__


@needs_bf16
def test_a_bf16_translator_mostly_agrees_with_fp32(tiny_bundle) -> None:
    from nmt.translator import Translator
    from tests.support.tiny import synthetic_lines

    texts = synthetic_lines(16, seed=3)
    fp32 = Translator.from_checkpoint(tiny_bundle)
    bf16 = Translator.from_checkpoint(tiny_bundle, precision="bf16")
    assert bf16.precision == "bf16"
    want = [t.text for t in fp32.translate(texts, beam_size=3)]
    got = [t.text for t in bf16.translate(texts, beam_size=3)]
    assert sum(a == b for a, b in zip(want, got, strict=True)) >= len(texts) // 2
