"""Training: where a run is (Position, saved in checkpoints), the log window's sums, and the
report a Ctrl-C ends with."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from nmt.training.rotation import list_step_checkpoints


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss with nan_policy=stop, ...)."""


@dataclass
class Position:
    """Where the run is; saved in every checkpoint so `--resume` continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # index of the next batch of `epoch` to train on
    since_best: int = 0  # validations without improvement (early stopping)
    best_score: float | None = None
    best_step: int = 0
    skipped_batches: int = 0
    train_seconds: float = 0.0
    validated_step: int = -1  # last step checkpointed by a validation

    @classmethod
    def from_dict(cls, raw: dict[str, Any], aliases: dict[str, str]) -> Position:
        """A stored position; `aliases` maps older key names (an LM's "window") to fields."""
        known = {f.name for f in fields(cls)}
        renamed = {aliases.get(k, k): v for k, v in raw.items()}
        unknown = sorted(set(renamed) - known)
        if unknown:
            raise TrainingError(f"cannot resume: unknown position entries {unknown}")
        return cls(**renamed)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a SIGTERM the CLI turned into one) stopped the run: where it stopped, and
    which checkpoint `--resume` continues from."""

    def __init__(self, run_dir: Path, position: Position, *, command: str = "nmt train"):
        self.run_dir = run_dir
        self.position = position
        self.command = command
        found = list_step_checkpoints(run_dir / "checkpoints")
        self.checkpoint: tuple[int, Path] | None = found[-1] if found else None
        super().__init__(self.describe())

    def describe(self) -> str:
        pos = self.position
        where = (f"stopped at step {pos.step} (epoch {pos.epoch + 1}, "
                 f"{pos.batch_in_epoch} batches into it)")
        resume = f"`{self.command} --resume {self.run_dir}`"
        if self.checkpoint is None:
            return (f"{where}; no checkpoint was written yet (one is written at every "
                    f"validation: each train.valid_every steps, or each epoch's end), so "
                    f"{resume} would start from scratch")
        step, path = self.checkpoint
        lost = pos.step - step
        behind = "the step it stopped at" if lost <= 0 else f"{lost} steps before that"
        return (f"{where}; the newest checkpoint is {path} (step {step}, {behind}): "
                f"{resume} continues from it")


@dataclass
class LogWindow:
    """Sums over the steps since the last train log line."""

    loss: float = 0.0
    nll: float = 0.0
    tokens: int = 0
    start: float = 0.0

    def __post_init__(self) -> None:
        self.start = time.perf_counter()

    def add(self, loss: float, nll: float, tokens: int) -> None:
        self.loss += loss
        self.nll += nll
        self.tokens += tokens

    def reset(self) -> None:
        self.loss = self.nll = 0.0
        self.tokens = 0
        self.start = time.perf_counter()
