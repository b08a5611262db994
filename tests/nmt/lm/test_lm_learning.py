"""A tiny character LM learns a deterministic text to near-zero loss and samples it back."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmt.lm.bundle import load_lm
from nmt.lm.evaluation import evaluate_lines
from nmt.lm.run import train_lm
from nmt.lm.sampling import sample
from tests.support.tiny_lm import PATTERN_LINE, tiny_lm_config


@pytest.mark.slow
def test_char_lm_learns_a_repeated_pattern(tmp_path: Path, write_text) -> None:
    lines = [PATTERN_LINE] * 150  # the stream "hello world\nhello world\n..."
    cfg = tiny_lm_config(write_text("train.txt", lines), write_text("valid.txt", lines[:20]),
                         train={"epochs": 6, "batch_size": 8, "bptt": 24, "lr": 0.02,
                                "valid_every": 0, "patience": 0})
    bundle = train_lm(cfg, tmp_path / "run")
    loaded = load_lm(bundle)
    scores = evaluate_lines(loaded.model, loaded.vocab, lines[:20])
    assert scores.bpc < 0.05  # the text is deterministic after the first character
    greedy = sample(loaded.model, loaded.vocab, prompt="hel", length=40, temperature=0)[0]
    assert greedy == ((PATTERN_LINE + "\n") * 5)[:43]
    sampled = sample(loaded.model, loaded.vocab, prompt="", length=36, temperature=1.0, seed=1)
    assert sampled[0] == "\n".join([PATTERN_LINE] * 3) + "\n"
