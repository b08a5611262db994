"""Tests for nmt.lm.evaluation: bits per character against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from nmt.lm.evaluation import LMScores, bits_per_character, evaluate_lines
from nmt.lm.vocab import CharVocab, SubwordVocab
from tests.support.tiny_lm import caption_lines, tiny_lm, tiny_spm


def test_bits_per_character_hand_example() -> None:
    # Three characters with probabilities 1/2, 1/2 and 1/4: 1 + 1 + 2 = 4 bits.
    nats = -(math.log(0.5) + math.log(0.5) + math.log(0.25))
    assert bits_per_character(nats, 3) == pytest.approx(4 / 3)
    scores = LMScores(tokens=3, chars=3, nll=nats)
    assert scores.ppl == pytest.approx(2 ** (4 / 3))
    assert scores.bits_per_token == pytest.approx(4 / 3)


def _uniform(model):
    """Zero output weights: every token gets probability 1/V, whatever the history."""
    with torch.no_grad():
        model.embedding.weight.zero_()
        model.output_bias.zero_()
    return model


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_uniform_char_model_has_log2_v_bits_per_character(batch_size: int) -> None:
    lines = ["ab c", "cab", "a"]
    vocab = CharVocab.from_text(lines)  # unk, \n, space, a, b, c: V = 6
    scores = evaluate_lines(_uniform(tiny_lm(vocab.size)), vocab, lines, batch_size=batch_size)
    assert scores.tokens == scores.chars == 4 + 1 + 3 + 1 + 1 + 1  # each line plus its newline
    assert scores.bpc == pytest.approx(math.log2(6))
    assert scores.ppl == pytest.approx(6.0)


def test_subword_bits_per_character_use_the_text_length() -> None:
    vocab = SubwordVocab(tiny_spm())
    lines = caption_lines(5, 9)
    scores = evaluate_lines(_uniform(tiny_lm(vocab.size)), vocab, lines)
    n_tokens = sum(len(ids) + 1 for ids in tiny_spm().encode(lines))  # + EOS per line
    n_chars = sum(len(line) + 1 for line in lines)
    assert scores.tokens == n_tokens < n_chars
    assert scores.ppl == pytest.approx(vocab.size)
    assert scores.bpc == pytest.approx(n_tokens * math.log2(vocab.size) / n_chars)


@torch.no_grad()
def test_evaluation_matches_a_step_by_step_loop() -> None:
    lines = ["abba", "cab"]
    vocab = CharVocab.from_text(lines)
    model = tiny_lm(vocab.size, cell="gru", seed=4)
    stream = [vocab.separator_id] + [i for line in lines for i in vocab.encode(line + "\n")]
    state, total = model.initial_state(1), 0.0
    for prev, nxt in zip(stream, stream[1:], strict=False):
        log_probs, state = model.step(torch.tensor([prev]), state)
        total -= float(log_probs[0, nxt])
    scores = evaluate_lines(model, vocab, lines, batch_size=1, bptt=3)
    assert scores.nll == pytest.approx(total, rel=1e-5)
