"""Tests for nmt.lm.stream and the trainer's truncated BPTT: layout, windows, carried state."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from nmt.lm.data import load_lm_data
from nmt.lm.model import build_lm
from nmt.lm.stream import IGNORE, layout, window_lengths, windows
from nmt.lm.trainer import LMTrainer
from tests.support.tiny_lm import caption_lines, tiny_lm_config


def test_rows_are_contiguous_parts_sharing_one_token() -> None:
    ids = list(range(1, 12))  # stream with the separator 0 in front: 0 1 2 ... 11
    data = layout(ids, 3, separator=0)  # 11 predictions // 3 = 3 per row
    assert data.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]


def test_padded_layout_predicts_every_token_once() -> None:
    ids = list(range(1, 12))
    data = layout(ids, 3, separator=0, pad=True)
    targets = [t for win in windows(data, window_lengths(data.size(1), 2))
               for t in win.targets.reshape(-1).tolist() if t != IGNORE]
    assert sorted(targets) == ids


def test_each_row_continues_where_it_left_off() -> None:
    data = layout(list(range(1, 200)), 4, separator=0)
    wins = list(windows(data, window_lengths(data.size(1), 7)))
    for row in range(4):
        inputs = torch.cat([w.inputs[row] for w in wins])
        targets = torch.cat([w.targets[row] for w in wins])
        assert inputs.tolist() == data[row, :-1].tolist()
        assert targets.tolist() == data[row, 1:].tolist()
    for prev, nxt in zip(wins, wins[1:], strict=False):
        assert nxt.start == prev.start + prev.inputs.size(1)
        # The next window's first input is the previous window's last target.
        assert torch.equal(nxt.inputs[:, 0], prev.targets[:, -1])


def test_random_window_lengths_cover_the_row_and_are_reproducible() -> None:
    lengths = window_lengths(1001, 70, random_bptt=True, seed=5)
    assert sum(lengths) == 1000
    assert lengths == window_lengths(1001, 70, random_bptt=True, seed=5)
    assert lengths != window_lengths(1001, 70, random_bptt=True, seed=6)
    assert len(set(lengths)) > 1
    assert all(n >= 5 for n in lengths[:-1])


def _trainer(tmp_path: Path, write_text, cell: str) -> LMTrainer:
    cfg = tiny_lm_config(write_text("train.txt", caption_lines(60, 1)), model={"cell": cell})
    data = load_lm_data(cfg, tmp_path)
    (tmp_path / "run").mkdir(exist_ok=True)
    torch.manual_seed(0)
    model = build_lm(cfg.model, vocab_size=data.vocab.size)
    return LMTrainer(cfg, tmp_path / "run", data, model, device=torch.device("cpu"))


def test_state_is_carried_across_windows_and_detached(tmp_path: Path, write_text) -> None:
    for cell in ("lstm", "gru"):
        trainer = _trainer(tmp_path, write_text, cell)
        calls = []
        forward = trainer.model.forward

        def spy(tokens, state=None, forward=forward, calls=calls):
            logits, out = forward(tokens, state)
            calls.append({"tokens": tokens, "state_in": state, "state_out": out, "logits": logits})
            return logits, out

        trainer.model.forward = spy
        wins = list(windows(trainer.stream, trainer.epoch_lengths(0)))[:3]
        for win in wins:
            trainer.train_step(win)
        assert calls[0]["state_in"] is None
        for k in (0, 1):
            carried, produced = calls[k + 1]["state_in"], calls[k]["state_out"]
            # Values: the state at the start of window k+1 is the state at the end of window k.
            assert torch.equal(carried.hidden, produced.hidden)
            if cell == "lstm":
                assert torch.equal(carried.cell, produced.cell)
            # Graph: window k+1's loss reaches nothing of window k.
            assert carried.hidden.grad_fn is None and not carried.hidden.requires_grad
            nxt = calls[k + 1]
            loss = F.cross_entropy(nxt["logits"].reshape(-1, nxt["logits"].size(-1)),
                                   wins[k + 1].targets.reshape(-1))
            (grad,) = torch.autograd.grad(loss, [produced.hidden], allow_unused=True)
            assert grad is None
        trainer.logbook.close()


def test_without_detach_the_gradient_would_reach_the_previous_window(tmp_path, write_text):
    """The control for the test above: the same check sees the path when it exists."""
    trainer = _trainer(tmp_path, write_text, "lstm")
    first, second = list(windows(trainer.stream, trainer.epoch_lengths(0)))[:2]
    _, state = trainer.model(first.inputs)
    logits, _ = trainer.model(second.inputs, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), second.targets.reshape(-1))
    (grad,) = torch.autograd.grad(loss, [state.hidden], allow_unused=True)
    assert grad is not None and grad.abs().sum() > 0
    trainer.logbook.close()
