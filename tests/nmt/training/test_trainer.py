"""End-to-end tests for nmt.training: a tiny model trains on toy files and leaves a complete run
directory; early stopping, non-finite losses and bad run directories are handled."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import nmt.training.trainer as trainer_module
from nmt.checkpoint import load_model, safe_load
from nmt.config import config_from_dict, load_config
from nmt.training.rotation import list_step_checkpoints
from nmt.training.run import train
from nmt.training.trainer import TrainingError
from nmt.translator import Translator

RunFactory = Callable[..., tuple[Path, Path | None]]


@pytest.fixture
def run_training(tmp_path: Path, write_toy_corpus, tiny_config) -> RunFactory:
    """Trains on fresh toy data; returns (run_dir, bundle). Keyword args update config sections."""

    def run(*, tsv: bool = False, n_train: int = 120, run_dir: Path | None = None,
            resume: bool = False, **sections: dict[str, Any]) -> tuple[Path, Path | None]:
        data = write_toy_corpus(n_train=n_train, n_valid=12, tsv=tsv)
        cfg = config_from_dict(tiny_config(data, **sections))
        run_dir = run_dir or tmp_path / "run"
        return run_dir, train(cfg, run_dir, device_name="cpu", resume=resume)

    return run


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("metric, tsv", [("bleu", False), ("loss", True)])
def test_run_directory_is_complete(run_training: RunFactory, metric: str, tsv: bool) -> None:
    keep_last = 2
    run_dir, bundle = run_training(
        tsv=tsv, train={"valid_metric": metric, "valid_every": 3, "keep_last": keep_last,
                        "epochs": 2, "log_every": 2})
    assert bundle == run_dir / "bundle"

    cfg = load_config(run_dir / "config.yaml")
    assert cfg.train.valid_metric == metric and cfg.model.emb_dim == 16
    assert (run_dir / "train.log").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))

    records = read_jsonl(run_dir / "metrics.jsonl")
    kinds = {r["kind"] for r in records}
    assert kinds == {"train", "valid"}
    valid = [r for r in records if r["kind"] == "valid"]
    assert all("valid_loss" in r and "valid_ppl" in r for r in valid)
    if metric == "bleu":
        assert all(0.0 <= r["bleu"] <= 100.0 and "chrf" in r for r in valid)
    with open(run_dir / "metrics.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(records)
    assert [int(r["step"]) for r in rows] == [r["step"] for r in records]

    ckpt_dir = run_dir / "checkpoints"
    steps = list_step_checkpoints(ckpt_dir)
    assert 1 <= len(steps) <= keep_last
    assert (ckpt_dir / "best.pt").is_file()
    last = safe_load(steps[-1][1])
    assert last["kind"] == "checkpoint" and last["position"]["step"] == steps[-1][0]
    assert {"model", "optimizer", "schedule", "rng", "src_spm", "tgt_spm"} <= set(last)
    assert len(valid) >= 2  # every 3 steps and at the end

    loaded = load_model(bundle)
    assert loaded.config == cfg
    assert loaded.metadata["steps"] == last["position"]["step"]
    assert loaded.metadata["weights_from"] == "best.pt"
    best = safe_load(ckpt_dir / "best.pt")
    for key, value in loaded.model.state_dict().items():
        torch.testing.assert_close(value, best["model"][key])

    texts = ["der hund rennt", "katze"]
    out = Translator.from_checkpoint(bundle).translate(texts, beam_size=2)
    assert [t.source for t in out] == texts
    assert all(isinstance(t.text, str) for t in out)


def test_training_lowers_the_loss(run_training: RunFactory) -> None:
    run_dir, _ = run_training(train={"epochs": 4, "valid_every": 0})
    valid = [r["valid_loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "valid"]
    assert len(valid) >= 4
    assert valid[-1] < valid[0]


def test_early_stopping_after_patience(run_training: RunFactory) -> None:
    # lr 0 with a constant schedule: the validation loss never improves after the first one.
    patience = 2
    run_dir, bundle = run_training(
        train={"lr": 0.0, "scheduler": "constant", "valid_every": 2, "patience": patience,
               "epochs": 50, "max_steps": 0})
    valid = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "valid"]
    assert len(valid) == 1 + patience
    assert [r["step"] for r in valid] == [2, 4, 6]
    assert load_model(bundle).metadata["best_valid"]["step"] == 2


class InjectInf:
    """Wraps sequence_loss so that training call number `at` returns an infinite loss."""

    def __init__(self, at: int):
        self.at = at
        self.calls = 0
        self.real = trainer_module.sequence_loss

    def __call__(self, logits: torch.Tensor, tgt_out: torch.Tensor, **kwargs: Any):
        loss, nll = self.real(logits, tgt_out, **kwargs)
        self.calls += 1
        if self.calls == self.at:
            return loss * float("inf"), nll
        return loss, nll


def test_nan_policy_stop_names_the_step(run_training: RunFactory, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    monkeypatch.setattr(trainer_module, "sequence_loss", InjectInf(at=3))
    with pytest.raises(TrainingError, match=r"step 3\b"):
        run_training(train={"nan_policy": "stop", "max_steps": 6})


def test_nan_policy_skip_continues(run_training: RunFactory, monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    monkeypatch.setattr(trainer_module, "sequence_loss", InjectInf(at=3))
    run_dir, bundle = run_training(train={"nan_policy": "skip", "max_steps": 6})
    last = safe_load(list_step_checkpoints(run_dir / "checkpoints")[-1][1])
    assert last["position"]["step"] == 6
    assert last["position"]["skipped_batches"] == 1
    loaded = load_model(bundle)
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


def test_unwritable_run_dir_fails_at_start(run_training: RunFactory, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(TrainingError, match="not writable"):
        run_training(run_dir=blocker / "run")


def test_existing_run_is_not_overwritten_without_resume(run_training: RunFactory) -> None:
    run_dir, _ = run_training(train={"max_steps": 2})
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir()}
    with pytest.raises(TrainingError, match="--resume"):
        run_training(run_dir=run_dir, train={"max_steps": 2})
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir()}
    assert after == before


def test_no_valid_set_still_checkpoints_and_bundles(run_training: RunFactory, tmp_path: Path,
                                                    write_toy_corpus, tiny_config) -> None:
    data = write_toy_corpus(n_train=80, n_valid=0)
    cfg = config_from_dict(tiny_config(data, train={"max_steps": 4}))
    bundle = train(cfg, tmp_path / "novalid", device_name="cpu")
    assert (tmp_path / "novalid" / "checkpoints" / "best.pt").is_file()
    assert "valid_scores" not in load_model(bundle).metadata


def test_empty_validation_set_fails_at_start(tmp_path: Path, write_toy_corpus,
                                             tiny_config) -> None:
    data = write_toy_corpus(n_train=40, n_valid=0)
    for side in ("src", "tgt"):
        (tmp_path / f"empty.{side}").write_text("", encoding="utf-8")
        data[f"valid_{side}"] = str(tmp_path / f"empty.{side}")
    cfg = config_from_dict(tiny_config(data))
    with pytest.raises(TrainingError, match="validation set is empty"):
        train(cfg, tmp_path / "run", device_name="cpu")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_init_from_starts_from_a_bundle(run_training: RunFactory, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`train.init_from`: the new run starts with the bundle's weights and vocabularies."""
    _, bundle = run_training(run_dir=tmp_path / "first", train={"epochs": 1})
    assert bundle is not None
    first = load_model(bundle)
    seen: dict[str, torch.Tensor] = {}
    real_train = trainer_module.Trainer.train

    def capture(self):  # the weights the second run starts with
        seen.update({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return real_train(self)

    monkeypatch.setattr(trainer_module.Trainer, "train", capture)
    _, second = run_training(run_dir=tmp_path / "second",
                             train={"epochs": 1, "init_from": str(bundle)},
                             model={"dropout": 0.1})
    assert second is not None
    for name, value in first.model.state_dict().items():
        torch.testing.assert_close(seen[name], value)
    assert load_model(second).src_tokenizer.model_proto == first.src_tokenizer.model_proto


def test_init_from_with_another_model_shape_names_the_key(run_training: RunFactory,
                                                          tmp_path: Path) -> None:
    _, bundle = run_training(run_dir=tmp_path / "first", train={"epochs": 1})
    with pytest.raises(TrainingError, match="model.dec_hidden is 16, this config's is 24"):
        run_training(run_dir=tmp_path / "second", train={"epochs": 1, "init_from": str(bundle)},
                     model={"dec_hidden": 24})
