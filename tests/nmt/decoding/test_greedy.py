import pytest
import torch

from nmt.data.batching import make_source_batch
from nmt.decoding.greedy import greedy_search
from nmt.tokenization import BOS_ID, EOS_ID, PAD_ID
from tests.nmt.decoding.conftest import rescore


def _encode(model, sources):
    b = make_source_batch(sources)
    return model.encode(b.src, b.src_lengths)


@torch.inference_mode()
def _reference_greedy(model, src, max_len):
    """The obvious one-sentence loop: argmax (PAD and BOS banned), fed back; EOS at max_len."""
    enc = _encode(model, [src])
    state, prev, tokens, total = model.init_state(enc), BOS_ID, [], 0.0
    for step in range(max_len + 1):
        log_probs, state, _ = model.decode_step(torch.tensor([prev]), state, enc)
        log_probs[0, [PAD_ID, BOS_ID]] = float("-inf")
        prev = EOS_ID if step == max_len else int(log_probs[0].argmax())
        total += float(log_probs[0, prev])
        if prev == EOS_ID:
            return tokens, total
        tokens.append(prev)
    raise AssertionError("unreachable")


def test_greedy_feeds_back_its_argmax(model, sources):
    hyps = greedy_search(model, _encode(model, sources), max_len=15)
    for src, (hyp,) in zip(sources, hyps, strict=True):
        tokens, total = _reference_greedy(model, src, 15)
        assert hyp.tokens == tokens
        assert hyp.score == pytest.approx(total, abs=1e-4)


def test_greedy_score_is_the_model_log_prob_after_length_penalty(model, sources):
    for alpha in (0.0, 1.0):
        hyps = greedy_search(model, _encode(model, sources), max_len=12, length_penalty=alpha)
        for src, (hyp,) in zip(sources, hyps, strict=True):
            logp, _ = rescore(model, src, hyp.tokens)
            assert hyp.score == pytest.approx(logp / ((5 + len(hyp.tokens) + 1) / 6) ** alpha,
                                              abs=1e-4)


def test_greedy_stops_when_every_row_ended(attn_model, sources):
    calls = []
    original = attn_model.decode_step

    def counting_step(*args):
        calls.append(args[0].numel())
        return original(*args)

    attn_model.decode_step = counting_step
    try:
        hyps = greedy_search(attn_model, _encode(attn_model, sources), max_len=50)
    finally:
        del attn_model.decode_step
    longest = max(len(h[0].tokens) for h in hyps)
    assert len(calls) == longest + 1  # one step per token, plus the step that emits EOS
    assert calls == sorted(calls, reverse=True)  # ended rows leave the batch
    assert calls[-1] == sum(len(h[0].tokens) == longest for h in hyps)


def test_max_len_per_sentence_and_zero(attn_model, sources):
    limits = torch.tensor([i % 4 for i in range(len(sources))])
    hyps = greedy_search(attn_model, _encode(attn_model, sources), max_len=limits)
    assert all(len(h[0].tokens) <= int(m) for h, m in zip(hyps, limits, strict=True))
    hyps = greedy_search(attn_model, _encode(attn_model, sources), max_len=0)
    assert all(h[0].tokens == [] for h in hyps)


def test_min_len(model, sources):
    hyps = greedy_search(model, _encode(model, sources), max_len=20, min_len=6)
    assert all(len(h[0].tokens) >= 6 for h in hyps)


def test_attention_rows_cover_each_sentence(model, sources):
    hyps = greedy_search(model, _encode(model, sources), max_len=10)
    for src, (hyp,) in zip(sources, hyps, strict=True):
        if not model.has_attention:
            assert hyp.attention is None
            continue
        assert hyp.attention.shape == (len(hyp.tokens), len(src) + 1)  # + the source EOS
        assert torch.allclose(hyp.attention.sum(dim=1), torch.ones(len(hyp.tokens)), atol=1e-5)
        _, rows = rescore(model, src, hyp.tokens)
        if hyp.tokens:
            assert torch.allclose(hyp.attention, torch.stack(rows[:-1])[:, : len(src) + 1],
                                  atol=1e-5)
    off = greedy_search(model, _encode(model, sources), max_len=10, return_attention=False)
    assert all(h[0].attention is None for h in off)
