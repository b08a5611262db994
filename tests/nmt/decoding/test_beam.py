import pytest
import torch

from nmt.data.batching import make_source_batch
from nmt.decoding import beam
from nmt.decoding.beam import beam_search
from nmt.decoding.greedy import greedy_search
from nmt.tokenization import PAD_ID, UNK_ID
from tests.nmt.decoding.conftest import full_ranking, rescore
from tests.support.tiny import tiny_config, tiny_model


def _encode(model, sources, extra_pad: int = 0):
    b = make_source_batch(sources)
    src = torch.nn.functional.pad(b.src, (0, extra_pad), value=PAD_ID)
    return model.encode(src, b.src_lengths)


def _lp(n_tokens: int, alpha: float) -> float:
    return ((5 + n_tokens + 1) / 6) ** alpha  # + 1: EOS counts


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_size_one_equals_greedy(model, sources, alpha):
    enc = _encode(model, sources)
    greedy = greedy_search(model, enc, max_len=15, length_penalty=alpha)
    beam = beam_search(model, enc, max_len=15, beam_size=1, length_penalty=alpha)
    assert [n[0].tokens for n in beam] == [n[0].tokens for n in greedy]
    assert [n[0].score for n in beam] == pytest.approx([n[0].score for n in greedy], abs=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_the_fast_step_finds_what_the_straightforward_one_finds(model, sources, monkeypatch,
                                                                alpha):
    """Same hypotheses and scores as with every extension ranked at once and the encoder output
    repeated for each beam (the search ranks in two stages and keeps one copy per sentence)."""
    enc = _encode(model, sources)
    kwargs = dict(max_len=12, beam_size=4, length_penalty=alpha, nbest=3, min_len=2,
                  no_repeat_ngram=3)
    fast = beam_search(model, enc, **kwargs)
    decode_step = model.decode_step

    def per_beam_step(prev, state, enc):
        k = prev.size(0) // enc.mask.size(0)
        rows = torch.arange(enc.mask.size(0)).repeat_interleave(k)
        return decode_step(prev, state, enc.select(rows))

    monkeypatch.setattr(model, "decode_step", per_beam_step)
    monkeypatch.setattr(beam, "top_extensions", full_ranking)
    slow = beam_search(model, enc, **kwargs)
    for got, want in zip(fast, slow, strict=True):
        assert [h.tokens for h in got] == [h.tokens for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-6, abs=1e-5)
        for g, w in zip(got, want, strict=True):
            if w.attention is None:
                assert g.attention is None
            else:
                torch.testing.assert_close(g.attention, w.attention, atol=1e-6, rtol=1e-5)


def test_beam_usually_finds_a_better_score_than_greedy(model, sources):
    """Beam search is not exhaustive, so this may fail on a rare sentence, never on most."""
    enc = _encode(model, sources)
    greedy = greedy_search(model, enc, max_len=15)
    beam = beam_search(model, enc, max_len=15, beam_size=5, length_penalty=0.0)
    better = [b[0].score >= g[0].score - 1e-5 for b, g in zip(beam, greedy, strict=True)]
    assert sum(better) >= 0.9 * len(better)
    assert sum(b[0].score for b in beam) >= sum(g[0].score for g in greedy)


def test_scores_are_model_log_probs_after_length_penalty(model, sources):
    hyps = beam_search(model, _encode(model, sources), max_len=12, beam_size=4,
                       length_penalty=0.7, nbest=4)
    for src, nbest in zip(sources, hyps, strict=True):
        for hyp in nbest:
            logp, _ = rescore(model, src, hyp.tokens)
            assert hyp.score == pytest.approx(logp / _lp(len(hyp.tokens), 0.7), abs=1e-4)


def test_nbest_is_distinct_and_sorted(model, sources):
    hyps = beam_search(model, _encode(model, sources), max_len=12, beam_size=5,
                       length_penalty=1.0, nbest=5)
    for nbest in hyps:
        assert len(nbest) == 5
        assert len({tuple(h.tokens) for h in nbest}) == 5
        scores = [h.score for h in nbest]
        assert scores == sorted(scores, reverse=True)


def test_batched_equals_one_at_a_time_and_padding_changes_nothing(model, sources):
    kwargs = dict(max_len=12, beam_size=3, length_penalty=1.0, nbest=3)
    batched = beam_search(model, _encode(model, sources), **kwargs)
    padded = beam_search(model, _encode(model, sources, extra_pad=5), **kwargs)
    for i, src in enumerate(sources):
        single = beam_search(model, _encode(model, [src]), **kwargs)[0]
        for other in (batched[i], padded[i]):
            assert [h.tokens for h in other] == [h.tokens for h in single]
            assert [h.score for h in other] == pytest.approx([h.score for h in single], abs=1e-4)


def test_length_penalty_favours_longer(model, sources):
    """Alpha does not steer the search, only the final ranking of the same finished pool, so
    a larger alpha never picks a shorter best hypothesis."""
    enc = _encode(model, sources)
    flat = beam_search(model, enc, max_len=12, beam_size=4, length_penalty=0.0)
    long = beam_search(model, enc, max_len=12, beam_size=4, length_penalty=2.0)
    assert all(len(b[0].tokens) >= len(a[0].tokens) for a, b in zip(flat, long, strict=True))


def test_max_len_per_sentence(model, sources):
    limits = torch.tensor([i % 5 for i in range(len(sources))])
    hyps = beam_search(model, _encode(model, sources), max_len=limits, beam_size=3,
                       length_penalty=1.0, nbest=2)
    for nbest, limit in zip(hyps, limits.tolist(), strict=True):
        assert nbest and all(len(h.tokens) <= limit for h in nbest)
    zero = beam_search(model, _encode(model, sources), max_len=0, beam_size=3, length_penalty=1.0)
    assert all(n[0].tokens == [] for n in zero)


def test_min_len_and_no_repeat_ngram(model, sources):
    hyps = beam_search(model, _encode(model, sources), max_len=20, beam_size=3,
                       length_penalty=0.0, nbest=3, min_len=5, no_repeat_ngram=2)
    for nbest in hyps:
        for h in nbest:
            assert len(h.tokens) >= 5
            bigrams = list(zip(h.tokens, h.tokens[1:], strict=False))
            assert len(bigrams) == len(set(bigrams))


def test_attention_matches_teacher_forcing(attn_model, sources):
    hyps = beam_search(attn_model, _encode(attn_model, sources), max_len=10, beam_size=3,
                       length_penalty=1.0, nbest=2)
    for src, nbest in zip(sources, hyps, strict=True):
        for h in nbest:
            _, rows = rescore(attn_model, src, h.tokens)
            assert h.attention.shape == (len(h.tokens), len(src) + 1)
            if h.tokens:
                assert torch.allclose(h.attention, torch.stack(rows[:-1]), atol=1e-5)


def test_step_scorer_hook(attn_model, sources):
    enc = _encode(attn_model, sources)
    kwargs = dict(max_len=8, beam_size=3, length_penalty=1.0)
    plain = beam_search(attn_model, enc, **kwargs)
    zero = beam_search(attn_model, enc, step_scorer=lambda toks, rows: 0.0, **kwargs)
    assert [n[0].tokens for n in zero] == [n[0].tokens for n in plain]
    seen_rows = []

    def prefer_seven(tokens, rows):
        seen_rows.append(rows.clone())
        bonus = torch.zeros(rows.numel(), 60)
        bonus[:, 7] = 100.0
        return bonus

    forced = beam_search(attn_model, enc, step_scorer=prefer_seven, **kwargs)
    assert all(n[0].tokens and set(n[0].tokens) == {7} for n in forced)
    assert set(seen_rows[0].tolist()) == set(range(len(sources)))


def test_more_beams_than_tokens_to_choose_from():
    """UNK, two real tokens and EOS, beam 5: the first step has fewer than K live extensions;
    the empty beams stay at -inf and the n-best lists still hold distinct, scored hypotheses."""
    model = tiny_model(tiny_config(), seed=4, vocab_size=6)
    enc = _encode(model, [[4, 5, 4], [5]])
    hyps = beam_search(model, enc, max_len=4, beam_size=5, length_penalty=0.0, nbest=5)
    for nbest in hyps:
        assert len(nbest) == 5 and len({tuple(h.tokens) for h in nbest}) == 5
        assert all(h.score > float("-inf") and set(h.tokens) <= {UNK_ID, 4, 5} for h in nbest)


def test_bad_arguments(attn_model, sources):
    enc = _encode(attn_model, sources)
    with pytest.raises(ValueError, match="nbest"):
        beam_search(attn_model, enc, max_len=5, beam_size=2, length_penalty=0.0, nbest=3)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(attn_model, enc, max_len=5, beam_size=0, length_penalty=0.0)
