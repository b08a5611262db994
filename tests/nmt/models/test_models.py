"""Tests for nmt.models: teacher forcing equals step-by-step decoding, padding invariance,
state reordering, and parameter sharing."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from nmt.config import ModelConfig
from nmt.data.batching import Batch, make_batch
from nmt.models.decoder import DecoderState
from nmt.models.encoder import EncoderOutput
from nmt.models.seq2seq import Seq2Seq, build_model
from nmt.tokenization import PAD_ID

VOCAB = 13
CELLS = ["rnn", "gru", "lstm"]
ATTENTIONS = ["none", "bahdanau", "luong_dot", "luong_general"]
VARIANTS = list(itertools.product(CELLS, ATTENTIONS, [False, True]))


def tiny_model(cell: str = "gru", attention: str = "bahdanau", input_feeding: bool = False,
               **overrides: object) -> Seq2Seq:
    torch.manual_seed(0)
    # enc_hidden 8 x 2 directions = dec_hidden 16, as luong_dot needs
    cfg = ModelConfig(cell=cell, attention=attention, input_feeding=input_feeding, emb_dim=12,
                      enc_hidden=8, dec_hidden=16, attn_dim=10, dropout=0.0, emb_dropout=0.0,
                      **overrides)
    return build_model(cfg, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB).eval()


def toy_batch(seed: int = 0, n: int = 5) -> Batch:
    rng = random.Random(seed)
    src = [[rng.randint(4, VOCAB - 1) for _ in range(rng.randint(1, 7))] for _ in range(n)]
    tgt = [[rng.randint(4, VOCAB - 1) for _ in range(rng.randint(1, 6))] for _ in range(n)]
    return make_batch(src, tgt)


def stepwise_log_probs(model: Seq2Seq, batch: Batch) -> torch.Tensor:
    """(B, T, V) log-probs from decode_step, feeding the gold previous token."""
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    steps = []
    for t in range(batch.tgt_in.size(1)):
        log_probs, state, _ = model.decode_step(batch.tgt_in[:, t], state, enc)
        steps.append(log_probs)
    return torch.stack(steps, dim=1)


def real(batch: Batch) -> torch.Tensor:
    """(B, T) bool: positions with a real target token."""
    return batch.tgt_out != PAD_ID


@pytest.mark.parametrize("cell, attention, feed", VARIANTS)
@torch.no_grad()
def test_forward_equals_stepwise_decoding(cell: str, attention: str, feed: bool) -> None:
    model = tiny_model(cell, attention, feed)
    batch = toy_batch()
    forward = model(batch).log_softmax(dim=-1)
    stepwise = stepwise_log_probs(model, batch)
    assert forward.shape == (len(batch), batch.tgt_in.size(1), VOCAB)
    mask = real(batch)
    torch.testing.assert_close(forward[mask], stepwise[mask], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell, attention, feed", VARIANTS)
@torch.no_grad()
def test_extra_padding_changes_no_output(cell: str, attention: str, feed: bool) -> None:
    model = tiny_model(cell, attention, feed)
    batch = toy_batch(seed=1)
    widened = Batch(
        src=torch.nn.functional.pad(batch.src, (0, 4), value=PAD_ID),
        src_lengths=batch.src_lengths,
        tgt_in=torch.nn.functional.pad(batch.tgt_in, (0, 3), value=PAD_ID),
        tgt_out=torch.nn.functional.pad(batch.tgt_out, (0, 3), value=PAD_ID),
    )
    out = model(batch)
    out_wide = model(widened)
    t = batch.tgt_in.size(1)
    torch.testing.assert_close(out_wide[:, :t][real(batch)], out[real(batch)], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell, attention", list(itertools.product(CELLS, ATTENTIONS)))
@torch.no_grad()
def test_batchmates_do_not_change_a_sentence(cell: str, attention: str) -> None:
    # A short sentence translated alone or next to longer ones (so padded) gives the same logits.
    model = tiny_model(cell, attention)
    alone = make_batch([[5, 6]], [[7, 8]])
    mixed = make_batch([[9, 10, 11, 12, 4, 5, 6], [5, 6]], [[7, 8, 9, 10, 11], [7, 8]])
    torch.testing.assert_close(model(mixed)[1, :3], model(alone)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_decoder_state_select_reorders_rows(cell: str) -> None:
    state = DecoderState(
        hidden=torch.randn(2, 4, 3),
        cell=torch.randn(2, 4, 3) if cell == "lstm" else None,
        input_feed=torch.randn(4, 3),
    )
    idx = torch.tensor([3, 0, 0, 2])
    hidden_before = state.hidden.clone()
    chosen = state.select(idx)
    assert torch.equal(chosen.hidden, state.hidden[:, idx])
    assert torch.equal(chosen.input_feed, state.input_feed[idx])
    if cell == "lstm":
        assert torch.equal(chosen.cell, state.cell[:, idx])
    else:
        assert chosen.cell is None
    assert torch.equal(state.hidden, hidden_before)  # a new value; the old state is untouched


def test_decoder_state_select_keeps_missing_parts_none() -> None:
    state = DecoderState(hidden=torch.randn(1, 3, 2), cell=None, input_feed=None)
    chosen = state.select(torch.tensor([2, 1]))
    assert chosen.cell is None and chosen.input_feed is None
    assert chosen.hidden.shape == (1, 2, 2)


@pytest.mark.parametrize("cell, attention", [("lstm", "bahdanau"), ("gru", "none")])
@torch.no_grad()
def test_encoder_output_select_reorders_rows(cell: str, attention: str) -> None:
    model = tiny_model(cell, attention)
    batch = toy_batch(n=3)
    enc = model.encode(batch.src, batch.src_lengths)
    idx = torch.tensor([2, 2, 0, 1])
    chosen = enc.select(idx)
    assert isinstance(chosen, EncoderOutput)
    for name in ("outputs", "mask", "final", "final_cell", "proj_keys"):
        before, after = getattr(enc, name), getattr(chosen, name)
        if before is None:
            assert after is None
        else:
            assert torch.equal(after, before[idx])
    # decoding the selected rows equals selecting the decoded rows
    state = model.init_state(enc)
    prev = torch.full((3,), 2)
    log_probs, _, _ = model.decode_step(prev, state, enc)
    log_probs_sel, _, _ = model.decode_step(prev[idx], state.select(idx), chosen)
    torch.testing.assert_close(log_probs_sel, log_probs[idx])


@pytest.mark.parametrize("cell, attention, feed", VARIANTS)
@torch.no_grad()
def test_beams_of_a_sentence_share_one_copy_of_its_encoder_output(cell: str, attention: str,
                                                                   feed: bool) -> None:
    """K decoder rows per sentence against one encoder row (what beam search passes) compute
    what they compute against the encoder output repeated K times."""
    model = tiny_model(cell, attention, feed)
    batch = toy_batch(n=4)
    enc = model.encode(batch.src, batch.src_lengths)
    rows = torch.arange(4).repeat_interleave(3)  # K = 3 beams per sentence
    repeated = enc.select(rows)
    state = model.init_state(enc).select(rows)
    prev = torch.randint(4, VOCAB, (12,), generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        want, want_state, want_attn = model.decode_step(prev, state, repeated)
        got, got_state, got_attn = model.decode_step(prev, state, enc)
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
        for name in ("hidden", "cell", "input_feed"):
            torch.testing.assert_close(getattr(got_state, name), getattr(want_state, name),
                                       atol=1e-6, rtol=1e-6)
        if want_attn is None:
            assert got_attn is None
        else:
            torch.testing.assert_close(got_attn, want_attn, atol=1e-6, rtol=1e-6)
        prev, state = want.argmax(dim=-1), want_state
    with pytest.raises(ValueError, match="beams"):
        model.decode_step(prev[:10], state.select(torch.arange(10)), enc)


def test_decode_step_gives_the_same_log_probs_with_autograd_on() -> None:
    """Without autograd the log-softmax runs in place on the logits; with it, out of place."""
    model = tiny_model()
    batch = toy_batch(n=3)
    prev = torch.tensor([2, 5, 7])
    with torch.no_grad():
        enc = model.encode(batch.src, batch.src_lengths)
        want, _, _ = model.decode_step(prev, model.init_state(enc), enc)
    enc = model.encode(batch.src, batch.src_lengths)
    got, _, _ = model.decode_step(prev, model.init_state(enc), enc)
    torch.testing.assert_close(got, want)
    got[:, 4].sum().backward()
    assert model.decoder.combine.weight.grad is not None


@pytest.mark.parametrize("attention", ATTENTIONS)
@torch.no_grad()
def test_attention_weights_ignore_padding(attention: str) -> None:
    model = tiny_model("gru", attention)
    batch = toy_batch(seed=2)
    enc = model.encode(batch.src, batch.src_lengths)
    _, _, attn = model.decode_step(batch.tgt_in[:, 0], model.init_state(enc), enc)
    if attention == "none":
        assert attn is None
        return
    assert attn.shape == batch.src.shape
    torch.testing.assert_close(attn.sum(-1), torch.ones(len(batch)))
    assert (attn[~batch.src_mask] == 0).all()


@pytest.mark.parametrize("emb_dim", [16, 12])  # equal to dec_hidden, and not (pre-projection)
def test_tie_output_shares_the_target_embedding(emb_dim: int) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(emb_dim=emb_dim, enc_hidden=8, dec_hidden=16, attn_dim=8, tie_output=True,
                      dropout=0.0, emb_dropout=0.0)
    model = build_model(cfg, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB)
    assert model.decoder.output is None
    batch = toy_batch()
    model(batch).sum().backward()
    assert model.decoder.embedding.weight.grad is not None
    with torch.no_grad():
        before = model(batch)
        model.decoder.embedding.weight[5].add_(1.0)  # one row of the shared matrix
        after = model(batch)
    # the output score of token 5 changed
    assert not torch.allclose(before[..., 5], after[..., 5])


def test_untied_output_has_its_own_projection() -> None:
    model = tiny_model(tie_output=False)
    assert model.decoder.output is not None
    assert model.decoder.output.weight is not model.decoder.embedding.weight


def test_share_embeddings_uses_one_parameter() -> None:
    model = tiny_model(share_embeddings=True, tie_output=True)
    assert model.encoder.embedding.weight is model.decoder.embedding.weight
    names = [n for n, _ in model.named_parameters() if "embedding" in n]
    assert len(names) == 1  # counted and optimised once
    separate = tiny_model(share_embeddings=False)
    assert separate.encoder.embedding.weight is not separate.decoder.embedding.weight


def test_share_embeddings_needs_one_vocabulary() -> None:
    with pytest.raises(ValueError, match="share_embeddings"):
        build_model(ModelConfig(share_embeddings=True), src_vocab_size=10, tgt_vocab_size=11)


def test_luong_dot_needs_matching_sizes() -> None:
    with pytest.raises(ValueError, match="luong_dot"):
        build_model(ModelConfig(attention="luong_dot", enc_hidden=8, dec_hidden=10),
                    src_vocab_size=10, tgt_vocab_size=10)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@torch.no_grad()
def test_layers_and_directions_shapes(layers: int, bidirectional: bool) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(cell="lstm", emb_dim=8, enc_hidden=6, dec_hidden=10, attn_dim=4,
                      enc_layers=layers, dec_layers=layers, bidirectional=bidirectional,
                      dropout=0.0, emb_dropout=0.0)
    model = build_model(cfg, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB + 2).eval()
    batch = toy_batch()
    enc = model.encode(batch.src, batch.src_lengths)
    d = 6 * (2 if bidirectional else 1)
    assert enc.outputs.shape == (*batch.src.shape, d)
    assert enc.final.shape == enc.final_cell.shape == (len(batch), d)
    state = model.init_state(enc)
    assert state.hidden.shape == state.cell.shape == (layers, len(batch), 10)
    assert model(batch).shape == (*batch.tgt_in.shape, VOCAB + 2)
    torch.testing.assert_close(model(batch).log_softmax(-1)[real(batch)],
                               stepwise_log_probs(model, batch)[real(batch)], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell, attention, feed", [("gru", "bahdanau", False),
                                                   ("lstm", "luong_general", True),
                                                   ("rnn", "none", False)])
@torch.no_grad()
def test_scheduled_sampling_that_never_samples_is_teacher_forcing(cell: str, attention: str,
                                                                  feed: bool) -> None:
    model, batch = tiny_model(cell, attention, feed), toy_batch()
    gen = torch.Generator().manual_seed(0)
    sampled = model(batch, sample_prob=1e-12, generator=gen)  # the step-by-step path
    torch.testing.assert_close(sampled, model(batch), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell, feed", [("gru", False), ("lstm", True)])
@torch.no_grad()
def test_scheduled_sampling_always_feeds_the_previous_prediction(cell: str, feed: bool) -> None:
    model, batch = tiny_model(cell, "bahdanau", feed), toy_batch()
    sampled = model(batch, sample_prob=1.0, generator=torch.Generator().manual_seed(0))
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    prev, steps = batch.tgt_in[:, 0], []
    for _ in range(batch.tgt_in.size(1)):
        log_probs, state, _ = model.decode_step(prev, state, enc)
        steps.append(log_probs)
        prev = log_probs.argmax(dim=-1)
    torch.testing.assert_close(sampled.log_softmax(dim=-1), torch.stack(steps, dim=1),
                               atol=1e-5, rtol=1e-5)
    assert not torch.allclose(sampled, model(batch), atol=1e-3)  # it did not teacher-force


@torch.no_grad()
def test_scheduled_sampling_draws_from_the_callers_generator() -> None:
    model, batch = tiny_model("gru", "bahdanau"), toy_batch()
    runs = [model(batch, sample_prob=0.5, generator=torch.Generator().manual_seed(s))
            for s in (3, 3, 4)]
    torch.testing.assert_close(runs[0], runs[1], atol=0, rtol=0)
    global_state = torch.get_rng_state()
    model(batch, sample_prob=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), global_state)  # the global stream is untouched
    assert not torch.equal(runs[0], runs[2])
