"""Resume: stopping half-way and continuing with `--resume` ends with the same weights as one
uninterrupted run (same batches, RNG streams, optimizer and schedule state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from nmt.checkpoint import safe_load
from nmt.config import config_from_dict
from nmt.training.rotation import step_path
from nmt.training.run import resume_config, train
from nmt.training.trainer import TrainingError

N = 10  # crosses an epoch boundary with the toy data (7 batches an epoch)


@pytest.mark.parametrize(
    "model, extra_train",
    [
        ({"dropout": 0.2, "emb_dropout": 0.1}, {}),  # the torch RNG stream must resume
        ({"cell": "lstm", "input_feeding": True}, {"scheduled_sampling": 0.3}),  # sampling RNG
    ],
    ids=["dropout", "scheduled-sampling"],
)
def test_resume_matches_an_uninterrupted_run(tmp_path: Path, write_toy_corpus, tiny_config,
                                             model: dict[str, Any], extra_train: dict[str, Any]
                                             ) -> None:
    data = write_toy_corpus(n_train=120, n_valid=12)
    train_cfg = {"valid_every": N // 2, "epochs": 5, "label_smoothing": 0.1, **extra_train}

    straight = tmp_path / "straight"
    cfg = config_from_dict(tiny_config(data, model=model, train={**train_cfg, "max_steps": N}))
    train(cfg, straight, device_name="cpu")

    halves = tmp_path / "halves"
    cfg_half = config_from_dict(tiny_config(data, model=model,
                                            train={**train_cfg, "max_steps": N // 2}))
    train(cfg_half, halves, device_name="cpu")
    assert safe_load(step_path(halves / "checkpoints", N // 2))["position"]["step"] == N // 2
    resumed_cfg = resume_config(halves, [f"train.max_steps={N}"])
    assert resumed_cfg.train.max_steps == N
    train(resumed_cfg, halves, device_name="cpu", resume=True)

    a = safe_load(step_path(straight / "checkpoints", N))
    b = safe_load(step_path(halves / "checkpoints", N))
    assert a["position"] == {**b["position"], "train_seconds": a["position"]["train_seconds"]}
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        torch.testing.assert_close(b["model"][key], a["model"][key], atol=1e-6, rtol=0)
    assert a["schedule"] == b["schedule"]


def test_resume_needs_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="config.yaml"):
        resume_config(tmp_path, [])
