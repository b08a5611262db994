"""Training: learning-rate schedule: linear warm-up, then plateau decay, inverse sqrt or constant.

torch's schedulers cover each piece but not warm-up followed by reduce-on-plateau, so this small
class computes the rate itself and writes it into the optimizer; its state is plain numbers.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer

from nmt.config import LoopConfig


class LRSchedule:
    def __init__(self, optimizer: Optimizer, cfg: LoopConfig):
        self.optimizer = optimizer
        self.cfg = cfg
        self.scale = 1.0  # plateau decay so far
        self.best: float | None = None
        self.bad_validations = 0
        self.lr = cfg.lr
        self.step(0)

    def step(self, step: int) -> float:
        """Sets the rate for optimizer step number `step` (0-based, before it is taken)."""
        cfg = self.cfg
        n = step + 1
        warm = min(1.0, n / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        if cfg.scheduler == "inverse_sqrt":
            factor = warm if n <= cfg.warmup_steps else math.sqrt(max(1, cfg.warmup_steps) / n)
        else:
            factor = warm * self.scale
        self.lr = (
            max(cfg.lr * factor, cfg.min_lr) if cfg.scheduler == "plateau" else cfg.lr * factor
        )
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        return self.lr

    def observe(self, metric: float, higher_is_better: bool) -> bool:
        """Records a validation score; returns True if it is the best so far."""
        score = metric if higher_is_better else -metric
        if self.best is None or score > self.best + 1e-9:
            self.best = score
            self.bad_validations = 0
            return True
        self.bad_validations += 1
        if self.cfg.scheduler == "plateau" and self.bad_validations > self.cfg.plateau_patience:
            self.scale *= self.cfg.plateau_factor
            self.bad_validations = 0
        return False

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict) -> None:
        self.scale = float(state["scale"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_validations = int(state["bad_validations"])
