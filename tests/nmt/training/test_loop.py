"""Tests for nmt.training.loop: translation and LM training both run the one loop; the time
budget (train.max_minutes); older LM positions map onto the loop's Position."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import nmt.lm.trainer as lm_trainer_module
import nmt.training.trainer as trainer_module
from nmt.checkpoint import safe_load, training_checkpoint
from nmt.config import LoopConfig, TrainConfig, config_from_dict
from nmt.lm.config import LMTrainConfig
from nmt.lm.trainer import LMTrainer
from nmt.training.loop import Position, TrainingLoop
from nmt.training.rotation import list_step_checkpoints
from nmt.training.run import resume_config, train
from nmt.training.trainer import Trainer

LOOP_METHODS = ["train", "_train_loop", "optimizer_step", "run_validation", "checkpoint_state",
                "restore", "out_of_budget", "log_window"]


@pytest.mark.parametrize("task", [Trainer, LMTrainer], ids=["translation", "lm"])
def test_both_tasks_are_thin_plugins_of_the_one_loop(task: type) -> None:
    assert issubclass(task, TrainingLoop)
    for name in LOOP_METHODS:
        assert getattr(task, name) is getattr(TrainingLoop, name), f"{task.__name__}.{name}"


@pytest.mark.parametrize("module", [trainer_module, lm_trainer_module], ids=["translation", "lm"])
def test_no_task_builds_its_own_loop_machinery(module) -> None:
    names = vars(module)
    for piece in ("LRSchedule", "Logbook", "tqdm", "save_step", "DistributedDataParallel",
                  "FORMAT_VERSION", "time"):
        assert piece not in names, f"{module.__name__} imports {piece}"
    source = inspect.getsource(module)
    for call in ("torch.optim.", "clip_grad_norm_(", ".backward(", "zero_grad("):
        assert call not in source, f"{module.__name__} calls {call}"


def test_task_configs_share_the_loop_config() -> None:
    assert issubclass(TrainConfig, LoopConfig) and issubclass(LMTrainConfig, LoopConfig)
    assert TrainConfig().max_minutes == LMTrainConfig().max_minutes == 0.0


def test_max_minutes_stops_translation_and_resume_keeps_the_budget(
        tmp_path: Path, write_toy_corpus, tiny_config) -> None:
    data = write_toy_corpus(n_train=120, n_valid=12)
    # A budget of a few microseconds: spent by the first step, as the LM's is.
    cfg = config_from_dict(tiny_config(data, train={"epochs": 5, "max_minutes": 1e-7}))
    run_dir = tmp_path / "run"
    bundle = train(cfg, run_dir, device_name="cpu")
    assert bundle is not None and (bundle / "model.pt").is_file()
    (step, path), = list_step_checkpoints(run_dir / "checkpoints")
    assert step == 1 and safe_load(path)["position"]["step"] == 1

    # Resumed with the budget spent, the run trains no further and still exports a bundle.
    train(resume_config(run_dir, []), run_dir, device_name="cpu", resume=True)
    assert [s for s, _ in list_step_checkpoints(run_dir / "checkpoints")] == [1]
    assert safe_load(bundle / "model.pt")["metadata"]["steps"] == 1


def test_an_older_lm_position_maps_onto_the_loop_position() -> None:
    stored = {"step": 7, "epoch": 1, "window": 3, "since_best": 0, "best_ppl": 12.5,
              "best_step": 5, "train_seconds": 1.5, "validated_step": 5}
    pos = Position.from_dict(stored, LMTrainer.POSITION_ALIASES)
    assert (pos.step, pos.epoch, pos.batch_in_epoch, pos.best_score) == (7, 1, 3, 12.5)
    assert pos.skipped_batches == 0


def test_a_training_checkpoint_names_a_training_kind() -> None:
    parts = dict(config={}, model={}, optimizer={}, schedule={}, position={}, rng={},
                 metadata={})
    assert training_checkpoint(kind="lm-checkpoint", extra={"vocab": []}, **parts)["vocab"] == []
    with pytest.raises(ValueError, match="bundle"):
        training_checkpoint(kind="bundle", **parts)
