"""Benchmarks: how close greedy decoding comes to the machine's compute limit.

FLOPs are counted from the model's shapes (a multiply-add is 2 FLOPs): per source token the
bidirectional encoder and the attention key projection; per decoder step and row the GRU, the
query projection, additive attention over S source positions, the attentional layer, and the
output projection. The limit is the GEMM rate this machine reaches at the decoder's own shapes,
measured here with the kernels nmt uses (oneDNN) and with torch's default (MKL).
"""

from __future__ import annotations

import time

import torch

from nmt.config import ModelConfig


def encoder_flops_per_token(m: ModelConfig, gates: int = 3) -> float:
    dirs = 2 if m.bidirectional else 1
    rnn = dirs * 2 * (m.emb_dim * gates * m.enc_hidden + m.enc_hidden * gates * m.enc_hidden)
    keys = 2 * (dirs * m.enc_hidden) * m.attn_dim
    return float(rnn + keys)


def step_flops(m: ModelConfig, src_len: int, vocab: int, gates: int = 3) -> float:
    """FLOPs of one decoder step for one row (Bahdanau attention, GRU, no input feeding)."""
    enc_dim = m.enc_hidden * (2 if m.bidirectional else 1)
    h = m.dec_hidden
    rnn_in = m.emb_dim + (h if m.input_feeding else 0)
    rnn = 2 * (rnn_in * gates * h + h * gates * h)
    attn = 2 * h * m.attn_dim + src_len * (3 * m.attn_dim) + 2 * src_len * enc_dim
    combine = 2 * (h + enc_dim) * h
    out = (2 * h * m.emb_dim if m.tie_output and h != m.emb_dim else 0) + 2 * (
        m.emb_dim if m.tie_output else h) * vocab
    return float(rnn + attn + combine + out)


def greedy_flops(m: ModelConfig, vocab: int, src_lengths: list[int], tgt_lengths: list[int]
                 ) -> float:
    """Total FLOPs of greedy decoding: each sentence runs len(target) + 1 steps (EOS)."""
    total = 0.0
    for s, t in zip(src_lengths, tgt_lengths, strict=True):
        total += s * encoder_flops_per_token(m) + (t + 1) * step_flops(m, s, vocab)
    return total


def gemm_rate(m: ModelConfig, vocab: int, *, rows: int = 64, threads: int, seconds: float = 1.0
              ) -> dict[str, float]:
    """GFLOP/s of the decoder-step matrix products at `rows` rows, oneDNN and torch default."""
    torch.set_num_threads(threads)
    h, e = m.dec_hidden, m.emb_dim
    enc_dim = m.enc_hidden * (2 if m.bidirectional else 1)
    shapes = [(e, vocab), (h, 3 * h), (e, 3 * h), (h + enc_dim, h), (h, e), (h, m.attn_dim)]
    out = {}
    for name, fast in (("onednn", True), ("default", False)):
        flops = 0.0
        start = time.perf_counter()
        with torch.inference_mode():
            mats = [(torch.randn(rows, k), torch.randn(n, k)) for k, n in shapes]
            while time.perf_counter() - start < seconds:
                for x, w in mats:
                    if fast:
                        torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
                    else:
                        torch.nn.functional.linear(x, w)
                    flops += 2 * rows * x.size(1) * w.size(0)
        out[name] = flops / (time.perf_counter() - start) / 1e9
    return out
