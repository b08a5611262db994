"""Tests for nmt.lm.fusion: shallow fusion through nmt.decoding's step_scorer hook."""

from __future__ import annotations

import pytest
import torch

from nmt.config import config_from_dict
from nmt.data.batching import make_source_batch
from nmt.decoding.beam import beam_search
from nmt.decoding.greedy import greedy_search
from nmt.lm.fusion import FusionError, LMScorer, check_fusable
from nmt.lm.vocab import CharVocab, SubwordVocab
from nmt.models.seq2seq import build_model
from nmt.tokenization import BOS_ID, EOS_ID, train_tokenizer
from tests.support.tiny_lm import caption_lines, tiny_lm, tiny_spm

SOURCES = [[5, 9, 12, 7], [20, 4], [8, 8, 30, 11, 6, 14], [25]]


@pytest.fixture(scope="module")
def tm():
    """A random tiny translation model over the tiny SentencePiece vocabulary."""
    cfg = config_from_dict({
        "data": {"train_src": "unused", "train_tgt": "unused"},
        "model": {"cell": "gru", "emb_dim": 12, "enc_hidden": 8, "dec_hidden": 16,
                  "attn_dim": 8, "dropout": 0.0, "emb_dropout": 0.0},
    })
    size = tiny_spm().vocab_size
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = build_model(cfg.model, src_vocab_size=size, tgt_vocab_size=size)
        for p in model.parameters():
            p.data.mul_(3.0)
    return model.eval()


@pytest.fixture(scope="module")
def lm():
    return tiny_lm(tiny_spm().vocab_size, cell="lstm", seed=2)


def _enc(tm):
    b = make_source_batch(SOURCES)
    return tm.encode(b.src, b.src_lengths)


@torch.no_grad()
def _fused_rescore(tm, lm, src, tokens, weight):
    """Teacher-forced sum of log p_TM + weight * log p_LM over tokens + EOS, by hand."""
    b = make_source_batch([src])
    enc = tm.encode(b.src, b.src_lengths)
    state = tm.init_state(enc)
    lm_state = lm.initial_state(1)
    total = 0.0
    for prev, lm_prev, nxt in zip([BOS_ID, *tokens], [EOS_ID, *tokens], [*tokens, EOS_ID],
                                      strict=True):
        tm_lp, state, _ = tm.decode_step(torch.tensor([prev]), state, enc)
        lm_lp, lm_state = lm.step(torch.tensor([lm_prev]), lm_state)
        total += float(tm_lp[0, nxt]) + weight * float(lm_lp[0, nxt])
    return total


@pytest.mark.parametrize("beam", [1, 3])
def test_weight_zero_equals_plain_search_exactly(tm, lm, beam):
    def search(scorer):
        if beam == 1:
            return greedy_search(tm, _enc(tm), max_len=12, step_scorer=scorer)
        return beam_search(tm, _enc(tm), max_len=12, beam_size=beam, length_penalty=1.0,
                           nbest=beam, step_scorer=scorer)

    plain, fused = search(None), search(LMScorer(lm, weight=0.0))
    assert [[(h.tokens, h.score) for h in n] for n in fused] == \
        [[(h.tokens, h.score) for h in n] for n in plain]


@pytest.mark.parametrize("beam", [1, 4])
def test_positive_weight_adds_weighted_lm_log_probs(tm, lm, beam):
    weight = 0.7
    scorer = LMScorer(lm, weight=weight)
    if beam == 1:
        results = greedy_search(tm, _enc(tm), max_len=12, step_scorer=scorer)
    else:
        results = beam_search(tm, _enc(tm), max_len=12, beam_size=beam, length_penalty=0.0,
                              nbest=beam, step_scorer=scorer)
    plain = greedy_search(tm, _enc(tm), max_len=12)
    changed = False
    for src, nbest, (base,) in zip(SOURCES, results, plain, strict=True):
        for hyp in nbest:
            assert hyp.score == pytest.approx(_fused_rescore(tm, lm, src, hyp.tokens, weight),
                                              abs=1e-4)
        changed |= nbest[0].tokens != base.tokens or nbest[0].score != pytest.approx(base.score)
    assert changed


@torch.no_grad()
def test_one_step_on_a_hand_built_example(lm):
    """scores = weight * log p_LM(next | EOS, history), row by row."""
    scorer = LMScorer(lm, weight=0.5)
    first = scorer(torch.empty((2, 0), dtype=torch.long), torch.tensor([0, 1]))
    expected, _ = lm.step(torch.tensor([EOS_ID]), lm.initial_state(1))
    assert torch.allclose(first, 0.5 * expected.expand(2, -1))
    # Step 2: rows extend the empty history with different tokens, in a new order.
    second = scorer(torch.tensor([[7], [5], [7]]), torch.tensor([0, 1, 1]))
    for row, token in enumerate([7, 5, 7]):
        logits, _ = lm(torch.tensor([[EOS_ID, token]]))
        assert torch.allclose(second[row], 0.5 * logits[0, -1].log_softmax(-1), atol=1e-5)


def test_cached_states_equal_rescoring_from_scratch(lm):
    scorer = LMScorer(lm, weight=1.0)
    scorer(torch.empty((1, 0), dtype=torch.long), torch.tensor([0]))
    scorer(torch.tensor([[4], [9]]), torch.tensor([0, 0]))
    cached = scorer(torch.tensor([[9, 6], [4, 4], [9, 8]]), torch.tensor([0, 0, 0]))
    fresh = LMScorer(lm, weight=1.0)(torch.tensor([[9, 6], [4, 4], [9, 8]]), torch.tensor([0] * 3))
    assert torch.allclose(cached, fresh, atol=1e-5)


@torch.no_grad()
def test_state_select_reorders_rows(lm):
    state = lm.initial_state(3)
    _, state = lm.step(torch.tensor([4, 5, 6]), state)
    picked = state.select(torch.tensor([2, 0, 0]))
    assert torch.equal(picked.hidden[:, 0], state.hidden[:, 2])
    assert torch.equal(picked.cell[:, 2], state.cell[:, 0])


def test_fuse_adds_the_weighted_lm_log_probs(lm):
    tm_lp = torch.log_softmax(torch.randn(2, 5), dim=-1)
    lm_lp = torch.log_softmax(torch.randn(2, 5), dim=-1)
    assert torch.equal(LMScorer(lm, weight=0.0).fuse(tm_lp, lm_lp), tm_lp)
    assert torch.allclose(LMScorer(lm, weight=0.3).fuse(tm_lp, lm_lp), tm_lp + 0.3 * lm_lp)


def test_vocabularies_must_match():
    check_fusable(SubwordVocab(tiny_spm()), tiny_spm())
    other = train_tokenizer(caption_lines(200, 5) + ["zebra giraffe"], vocab_size=45)
    with pytest.raises(FusionError, match="not the translation model's target SentencePiece"):
        check_fusable(SubwordVocab(other), tiny_spm())
    with pytest.raises(FusionError, match="char-level"):
        check_fusable(CharVocab.from_text(["abc"]), tiny_spm())
    with pytest.raises(FusionError, match=">= 0"):
        LMScorer(tiny_lm(10), weight=-1.0)


def test_fusion_scorer_loads_a_bundle_and_checks_it(tmp_path, lm):
    from nmt.lm.bundle import export_lm_bundle
    from nmt.lm.fusion import fusion_scorer
    from tests.support.tiny_lm import tiny_lm_config

    cfg = tiny_lm_config("unused.txt", tokenizer={"type": "spm"})
    export_lm_bundle(tmp_path / "lm", config=cfg, state_dict=lm.state_dict(),
                     vocab=SubwordVocab(tiny_spm()), metadata={})
    scorer = fusion_scorer(tmp_path / "lm", tgt_tokenizer=tiny_spm(), weight=0.2)
    assert scorer.weight == 0.2
    other = train_tokenizer(caption_lines(200, 5) + ["zebra giraffe"], vocab_size=45)
    with pytest.raises(FusionError, match="SentencePiece"):
        fusion_scorer(tmp_path / "lm", tgt_tokenizer=other, weight=0.2)
