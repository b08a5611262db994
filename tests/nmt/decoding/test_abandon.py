"""Cancellation: abandoned sentences leave a running batch at the next decoding step (`drop`),
and abandoned texts of a translate call are skipped or stop decoding (`abandoned`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from nmt.data.batching import make_source_batch
from nmt.decoding.beam import beam_search
from nmt.decoding.greedy import greedy_search
from nmt.decoding.hypothesis import Hypothesis
from nmt.translator import ABANDONED, Candidate, Translation, Translator
from tests.support.tiny import synthetic_lines, tiny_config, tiny_model, tiny_tokenizer

PLACEHOLDER = [Candidate("", float("-inf"), [], None)]


def _encode(model, sources):
    b = make_source_batch(sources)
    return model.encode(b.src, b.src_lengths)


def _drop_from(sentence: int, first_step: int, calls: list[int]) -> Callable[[Tensor], Tensor]:
    """A `drop` hook abandoning `sentence` from step `first_step` on; `calls` counts its calls."""

    def drop(sent: Tensor) -> Tensor:
        calls.append(sent.numel())
        return (sent == sentence) & (len(calls) - 1 >= first_step)

    return drop


def _same(a: list[Hypothesis], b: list[Hypothesis]) -> bool:
    """Bit-identical n-best lists (tokens, scores and attention)."""
    return len(a) == len(b) and all(
        x.tokens == y.tokens and x.score == y.score
        and (x.attention is None) == (y.attention is None)
        and (x.attention is None or torch.equal(x.attention, y.attention))
        for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("beam_size", [1, 3])
def test_dropped_sentence_gets_nothing_and_the_others_are_unchanged(model, sources, beam_size):
    srcs = sources[:3]

    def search(**kwargs):
        enc = _encode(model, srcs)
        if beam_size == 1:
            return greedy_search(model, enc, max_len=12, min_len=6, **kwargs)
        return beam_search(model, enc, max_len=12, min_len=6, beam_size=beam_size,
                           length_penalty=1.0, nbest=2, **kwargs)

    plain = search()
    calls: list[int] = []
    rows: list[int] = []
    original = model.decode_step

    def counting_step(*args):
        rows.append(args[0].numel())
        return original(*args)

    model.decode_step = counting_step
    try:
        dropped = search(drop=_drop_from(1, 3, calls))
    finally:
        del model.decode_step
    assert plain[1] and dropped[1] == []
    assert _same(dropped[0], plain[0]) and _same(dropped[2], plain[2])
    assert len(calls) == len(rows)  # asked once per step
    # min_len keeps all three live until step 6; sentence 1 is gone before step 3 runs. The
    # first step runs one row per sentence (each starts as one beam).
    assert rows[:4] == [3, 3 * beam_size, 3 * beam_size, 2 * beam_size]


@pytest.mark.parametrize("beam_size", [1, 3])
def test_dropping_every_sentence_ends_the_search_at_once(attn_model, sources, beam_size):
    steps: list[int] = []
    original = attn_model.decode_step

    def counting_step(*args):
        steps.append(1)
        return original(*args)

    def drop_all(sent: Tensor) -> Tensor:
        return torch.full(sent.shape, len(steps) >= 2, dtype=torch.bool)

    attn_model.decode_step = counting_step
    try:
        enc = _encode(attn_model, sources)
        if beam_size == 1:
            out = greedy_search(attn_model, enc, max_len=30, min_len=20, drop=drop_all)
        else:
            out = beam_search(attn_model, enc, max_len=30, min_len=20, beam_size=beam_size,
                              length_penalty=1.0, drop=drop_all)
    finally:
        del attn_model.decode_step
    assert len(steps) == 2 and out == [[] for _ in sources]


# Translator: an untrained tiny model forced to decode long outputs (min_len), so a call has
# many steps to abandon.
TEXTS = synthetic_lines(3, seed=5)  # 5 sentences: the first two texts have two each
LONG = {"min_len": 40, "max_len_a": 0.0, "max_len_b": 45}


def _translator(decode=None, metadata=None) -> Translator:
    config = tiny_config(decode={**LONG, **(decode or {})})
    tok = tiny_tokenizer()
    return Translator(tiny_model(config, seed=3), tok, tok, config, metadata)


@pytest.fixture(scope="module")
def translator() -> Translator:
    return _translator()


class _Counter:
    """Counts the encoder's rows and the decoder's steps of one Translator, while installed."""

    def __init__(self, translator: Translator):
        self.model = translator.model
        self.encoded: list[int] = []  # rows per encode call
        self.steps: list[int] = []  # rows per decoder step

    def __enter__(self) -> _Counter:
        encode, step = self.model.encode, self.model.decode_step

        def counting_encode(src, lengths):
            self.encoded.append(src.size(0))
            return encode(src, lengths)

        def counting_step(*args):
            self.steps.append(args[0].numel())
            return step(*args)

        self.model.encode, self.model.decode_step = counting_encode, counting_step
        return self

    def __exit__(self, *exc) -> None:
        del self.model.encode, self.model.decode_step


def _is_placeholder(tr: Translation, source: str) -> bool:
    return tr == Translation(source, [], PLACEHOLDER, [ABANDONED])


@pytest.mark.parametrize("beam_size", [1, 2])
def test_the_worker_is_free_within_one_step(translator, beam_size):
    k = 5
    with _Counter(translator) as count:
        out = translator.translate(
            TEXTS, beam_size=beam_size, max_sentences=1,  # one batch per text
            abandoned=lambda: range(len(TEXTS)) if len(count.steps) >= k else ())
    assert k <= len(count.steps) <= k + 1  # the max length would allow 46 steps per batch
    assert count.encoded == [1]  # the batches not started yet are skipped
    assert all(_is_placeholder(tr, t) for tr, t in zip(out, TEXTS, strict=True))


@pytest.mark.parametrize("beam_size", [1, 2])
def test_a_text_abandoned_mid_batch_leaves_the_others_unchanged(translator, beam_size):
    plain = translator.translate(TEXTS, beam_size=beam_size)
    with _Counter(translator) as count:
        out = translator.translate(TEXTS, beam_size=beam_size,
                                   abandoned=lambda: {1} if len(count.steps) >= 3 else ())
    assert count.encoded == [translator.count_units(TEXTS)]  # one batch, all started
    assert out[0] == plain[0] and out[2] == plain[2]
    assert _is_placeholder(out[1], TEXTS[1])


def test_texts_abandoned_from_the_start_are_never_encoded(translator):
    with _Counter(translator) as alone:
        expected = translator.translate([TEXTS[0], TEXTS[2]])
    with _Counter(translator) as count:
        out = translator.translate(TEXTS, abandoned=lambda: {1})
    assert count.encoded == alone.encoded and count.steps == alone.steps
    assert [out[0], out[2]] == expected and _is_placeholder(out[1], TEXTS[1])
    with _Counter(translator) as none:
        out = translator.translate(TEXTS, abandoned=lambda: {0, 1, 2})
    assert none.encoded == none.steps == []
    assert all(_is_placeholder(tr, t) for tr, t in zip(out, TEXTS, strict=True))


def test_abandoned_texts_are_not_decoded_again_when_short():
    # p01 = 5 output subwords per source subword: every first output counts as far too short.
    tr = _translator(decode={"min_len": 0, "max_len_b": 5, "max_len_a": 1.5},
                     metadata={"length_ratio": {"p01": 5.0}})
    texts = ["Hund katze eine dem park sofa!", "Mann fährt fährt park hund spielen frauen lachen."]
    lengths = tr.count_tokens(texts)
    assert 6 <= lengths[0] < lengths[1] and tr.count_units(texts) == 2  # texts[0] decodes first
    with _Counter(tr) as plain:
        first = tr.translate(texts, beam_size=1, max_sentences=1)
    assert len(plain.encoded) == 4 and all("decoded again" in t.warnings[0] for t in first)
    with _Counter(tr) as count:
        out = tr.translate(texts, beam_size=1, max_sentences=1,
                           abandoned=lambda: {0} if len(count.encoded) >= 2 else ())
    assert count.encoded == [1, 1, 1]  # text 0 decoded once; only text 1 again
    assert _is_placeholder(out[0], texts[0]) and out[1] == first[1]
